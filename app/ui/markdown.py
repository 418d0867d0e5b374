"""Markdown to the HTML subset that Qt's rich text shows, with Pygments colours for code.

It covers what chat messages use: headings, paragraphs, nested lists, block quotes, rules,
GFM tables, fenced code, and inline code, emphasis, strike-through and links. Raw HTML is
shown as text, never interpreted, and only http(s) and mailto links become links.
:func:`split_blocks` cuts a message at its blank lines and code fences so that a reply
being streamed re-renders only its last block. Pygments work is in ``markdown_code``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from app.ui.markdown_code import (
    CODE_CHUNK_LINES,
    DARK_CODE_STYLE,
    LIGHT_CODE_STYLE,
    code_chunks,
    code_html,
    highlight_code,
    warm_up,
)

__all__ = [  # the code highlighting names are re-exported from app.ui.markdown_code
    "CODE_CHUNK_LINES",
    "DARK_CODE_STYLE",
    "GAP_PX",
    "HEADING_SCALE",
    "LIGHT_CODE_STYLE",
    "LINK_SCHEMES",
    "Block",
    "BlockKind",
    "MarkdownTheme",
    "code_chunks",
    "code_html",
    "highlight_code",
    "render_markdown",
    "split_blocks",
    "warm_up",
]

GAP_PX = 8  # between top-level blocks, here and between a bubble's block widgets
HEADING_SCALE = {1: 1.45, 2: 1.25, 3: 1.12, 4: 1.0, 5: 1.0, 6: 1.0}
LINK_SCHEMES = ("http://", "https://", "mailto:")

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)[^`]*$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_QUOTE = re.compile(r"^ {0,3}> ?(.*)$")
_LIST = re.compile(r"^( *)([-*+]|\d{1,9}[.)])(?:( +)(.*))?$")
_TABLE_DELIM = re.compile(r"^ *\|? *:?-+:? *(\| *:?-+:? *)*\|? *$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>])")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^\s<>]+)>")
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^\s()<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_BARE_URL = re.compile(r"https?://[^\s<>\"]+")
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
_BLOCK_TAGS = ("<p ", "<h", "<ul", "<ol", "<table", "<blockquote")
_EMPHASIS = (
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), r"<b>\1</b>"),
    (re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)"), r"<b>\1</b>"),
    (re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])"), r"<i>\1</i>"),
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"<i>\1</i>"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"<s>\1</s>"),
)


@dataclass(frozen=True, slots=True)
class MarkdownTheme:
    """Colours and fonts the HTML is written with (stylesheet colour strings)."""

    link: str = "#1a5fb4"
    muted: str = "#777777"
    code_background: str = "#eeeeee"
    border: str = "#c8c8c8"
    header_background: str = "#f0f0f0"  # a #rrggbb name: Qt reads it from bgcolor=""
    code_font: str = "monospace"
    base_pt: float = 10.0
    dark: bool = False


class BlockKind(Enum):
    """What a block of a message is."""

    TEXT = "text"
    CODE = "code"


@dataclass(frozen=True, slots=True)
class Block:
    """A piece of a message: Markdown text, or the code of one fenced block."""

    kind: BlockKind
    source: str
    language: str = ""


def split_blocks(source: str) -> list[Block]:
    """Cut a message into text blocks and code blocks.

    Text is cut at blank lines, except inside a list; code fences at any indent become
    code blocks (an unclosed fence runs to the end, as it does while a reply streams).

    Returns:
        The blocks in order; empty for blank text.
    """
    lines = source.replace("\r\n", "\n").split("\n")
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        text = "\n".join(para).strip("\n")
        if text.strip():
            blocks.append(Block(BlockKind.TEXT, text))
        para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            code, i = _fenced(lines, i, fence)
            blocks.append(Block(BlockKind.CODE, code, fence[3].lower()))
            continue
        if not line.strip():
            ahead = next((s for s in lines[i + 1 :] if s.strip()), "")
            if para and ahead and _continues_list(para, ahead):
                para.append("")
            else:
                flush()
        else:
            para.append(line)
        i += 1
    flush()
    return blocks


def _fenced(lines: list[str], i: int, fence: re.Match[str]) -> tuple[str, int]:
    """The code of the fence opened at ``lines[i]``, and the index after its end."""
    indent, marker = len(fence[1]), fence[2]
    body: list[str] = []
    i += 1
    while i < len(lines):
        close = lines[i].strip()
        if close.startswith(marker) and not close.strip(marker[0]):
            return "\n".join(body), i + 1
        line = lines[i]
        body.append(line[min(indent, len(line) - len(line.lstrip())) :])
        i += 1
    return "\n".join(body), i


def _continues_list(para: list[str], ahead: str) -> bool:
    in_list = any(_LIST.match(line) for line in para)
    return in_list and (ahead[:1] in (" ", "\t") or bool(_LIST.match(ahead)))


def render_markdown(source: str, theme: MarkdownTheme, *, hard_breaks: bool = True) -> str:
    """Markdown to HTML for a QLabel.

    Args:
        source: The Markdown text.
        theme: Colours and fonts.
        hard_breaks: A single newline breaks the line (as people type in a chat), instead
            of joining the lines as CommonMark does.

    Returns:
        HTML in Qt's rich-text subset; top-level blocks are ``GAP_PX`` apart.
    """
    lines = source.replace("\r\n", "\n").replace("\x00", "").expandtabs(4).split("\n")
    return _Renderer(theme, hard_breaks).blocks(lines, top=True)


class _Renderer:
    """Turns Markdown lines into HTML; nested blocks render through the same methods."""

    def __init__(self, theme: MarkdownTheme, hard_breaks: bool) -> None:
        self.theme = theme
        self.hard_breaks = hard_breaks

    def blocks(self, lines: list[str], *, top: bool = False, depth: int = 0) -> str:
        out: list[str] = []
        i = 0
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            gap = GAP_PX if top and out else 0
            html_part, i = self._block(lines, i, gap, depth, tight=not top)
            if out and not top and not _is_block(html_part) and not _is_block(out[-1]):
                html_part = "<br>" + html_part  # two paragraphs of one list item
            out.append(html_part)
        return "".join(out)

    def _block(
        self, lines: list[str], i: int, gap: int, depth: int, *, tight: bool
    ) -> tuple[str, int]:
        line = lines[i]
        margins = f"margin-top:{gap}px; margin-bottom:0px"
        if fence := _FENCE.match(line):
            code, i = _fenced(lines, i, fence)
            return self._code_block(code, fence[3].lower(), margins), i
        if heading := _HEADING.match(line):
            return self._heading(len(heading[1]), heading[2] or "", gap), i + 1
        if _RULE.match(line):
            return "<hr>", i + 1
        if _QUOTE.match(line):
            quoted = []
            while i < len(lines) and (m := _QUOTE.match(lines[i])):
                quoted.append(m[1])
                i += 1
            inner = self.blocks(quoted, depth=depth)
            return (
                f'<blockquote style="{margins}; margin-left:14px; color:{self.theme.muted}">'
                f"{inner}</blockquote>",
                i,
            )
        if i + 1 < len(lines) and "|" in line and _TABLE_DELIM.match(lines[i + 1]):
            return self._table(lines, i, margins)
        if _LIST.match(line):
            return self._list(lines, i, margins, depth)
        return self._paragraph(lines, i, margins, tight)

    def _heading(self, level: int, text: str, gap: int) -> str:
        size = self.theme.base_pt * HEADING_SCALE[level]
        top = gap + (4 if gap else 0)
        return (
            f'<h{level} style="margin-top:{top}px; margin-bottom:0px; font-size:{size:.1f}pt">'
            f"{self.inline(text)}</h{level}>"
        )

    def _code_block(self, code: str, language: str, margins: str) -> str:
        body = highlight_code(code, language, dark=self.theme.dark)
        return (
            f'<table width="100%" cellspacing="0" cellpadding="8" style="{margins}; '
            f'background-color:{self.theme.code_background}"><tr><td>'
            f'<div style="white-space:pre-wrap; font-family:{self.theme.code_font}">'
            f"\n{body}\n</div>"
            "</td></tr></table>"
        )

    def _paragraph(self, lines: list[str], i: int, margins: str, tight: bool) -> tuple[str, int]:
        parts: list[str] = []
        while i < len(lines) and lines[i].strip():
            line = lines[i]
            if parts and self._starts_block(lines, i):
                break
            if parts and _SETEXT.match(line):
                level = 1 if line.strip()[0] == "=" else 2
                return self._heading(level, " ".join(p.strip() for p in parts), 0), i + 1
            parts.append(line)
            i += 1
        rendered = []
        for n, part in enumerate(parts):
            hard = part.endswith("  ") or part.endswith("\\")
            text = self.inline(part.rstrip().removesuffix("\\").strip())
            last = n == len(parts) - 1
            rendered.append(text + ("" if last else "<br>" if hard or self.hard_breaks else " "))
        body = "".join(rendered)
        return (body if tight else f'<p style="{margins}">{body}</p>'), i

    def _starts_block(self, lines: list[str], i: int) -> bool:
        line = lines[i]
        return bool(
            _FENCE.match(line)
            or _HEADING.match(line)
            or (_RULE.match(line) and not _SETEXT.match(line))
            or _QUOTE.match(line)
            or (_LIST.match(line) and (_LIST.match(line)[4] or "").strip())
            or (i + 1 < len(lines) and "|" in line and _TABLE_DELIM.match(lines[i + 1]))
        )

    def _list(self, lines: list[str], i: int, margins: str, depth: int) -> tuple[str, int]:
        first = _LIST.match(lines[i])
        assert first is not None
        base = len(first[1])
        ordered = first[2][0].isdigit()
        items: list[list[str]] = []
        content = base + 2
        while i < len(lines):
            line = lines[i]
            indent = len(line) - len(line.lstrip(" "))
            marker = _LIST.match(line)
            if marker and indent <= base + 1 and marker[2][0].isdigit() == ordered:
                content = indent + len(marker[2]) + min(len(marker[3] or " "), 4)
                items.append([marker[4] or ""])
            elif not line.strip():
                ahead = next((s for s in lines[i + 1 :] if s.strip()), "")
                ahead_indent = len(ahead) - len(ahead.lstrip(" "))
                sibling = _LIST.match(ahead) and ahead_indent <= base + 1
                if not ahead or not (ahead_indent > base + 1 or sibling):
                    break
                items[-1].append("")
            elif indent > base + 1:
                items[-1].append(line[min(indent, content) :])
            elif items[-1][-1].strip() and not self._starts_block(lines, i):
                items[-1].append(line.strip())  # a lazy continuation line
            else:
                break
            i += 1
        tag = "ol" if ordered else "ul"
        start = int(first[2][:-1]) if ordered else 1
        bullet = ("disc", "circle", "square")[depth % 3]
        kind = f' start="{start}"' if ordered else f' type="{bullet}"'
        body = "".join(f"<li>{self.blocks(item, depth=depth + 1)}</li>" for item in items)
        return f'<{tag}{kind} style="{margins}">{body}</{tag}>', i

    def _table(self, lines: list[str], i: int, margins: str) -> tuple[str, int]:
        header = _cells(lines[i])
        aligns = []
        for cell in _cells(lines[i + 1]):
            left, right = cell.startswith(":"), cell.endswith(":")
            aligns.append("center" if left and right else "right" if right else "left")
        rows = []
        i += 2
        while i < len(lines) and "|" in lines[i] and lines[i].strip():
            rows.append(_cells(lines[i]))
            i += 1
        t = self.theme
        out = [
            f'<table border="1" cellspacing="0" cellpadding="6" style="{margins}; '
            f'border-collapse:collapse; border-style:solid; border-color:{t.border}">'
        ]
        for r, row in enumerate([header, *rows]):
            tag = "th" if r == 0 else "td"
            shade = f' bgcolor="{t.header_background}"' if r == 0 else ""
            cells = (row + [""] * len(header))[: len(header)]
            out.append("<tr>")
            for cell, align in zip(cells, aligns + ["left"] * len(header), strict=False):
                out.append(f'<{tag} align="{align}"{shade}>{self.inline(cell)}</{tag}>')
            out.append("</tr>")
        out.append("</table>")
        return "".join(out), i

    def inline(self, text: str) -> str:
        """Inline Markdown (code, emphasis, links) to HTML, everything else escaped."""
        stash: list[str] = []

        def keep(fragment: str) -> str:
            stash.append(fragment)
            return f"\x00{len(stash) - 1}\x00"

        def code(m: re.Match[str]) -> str:
            body = m[2].replace("\n", " ")
            if body.startswith(" ") and body.endswith(" ") and body.strip():
                body = body[1:-1]
            return keep(
                f'<code style="font-family:{self.theme.code_font}; '
                f'background-color:{self.theme.code_background}">'
                f"&nbsp;{html.escape(body, quote=False)}&nbsp;</code>"
            )

        def link(m: re.Match[str]) -> str:
            label = self.inline(m[2]) if m[2] else html.escape(m[3], quote=False)
            return keep(self._anchor(m[3], label))

        text = _CODE_SPAN.sub(code, text)
        text = _ESCAPE.sub(lambda m: keep(html.escape(m[1])), text)
        text = _AUTOLINK.sub(lambda m: keep(self._anchor(m[1], html.escape(m[1]))), text)
        text = _LINK.sub(link, text)
        text = _BARE_URL.sub(self._bare_url(keep), text)
        text = html.escape(text, quote=False)
        for pattern, replacement in _EMPHASIS:
            text = pattern.sub(replacement, text)
        while _PLACEHOLDER.search(text):
            text = _PLACEHOLDER.sub(lambda m: stash[int(m[1])], text)
        return text

    def _bare_url(self, keep: Callable[[str], str]) -> Callable[[re.Match[str]], str]:
        def sub(m: re.Match[str]) -> str:
            url = m[0].rstrip(".,;:!?)'")
            rest = m[0][len(url) :]
            return keep(self._anchor(url, html.escape(url))) + rest

        return sub

    def _anchor(self, url: str, label: str) -> str:
        if not url.lower().startswith(LINK_SCHEMES):
            return label
        href = html.escape(url, quote=True)
        return f'<a href="{href}" style="color:{self.theme.link}">{label}</a>'


def _is_block(fragment: str) -> bool:
    return fragment.startswith(_BLOCK_TAGS)


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line.removeprefix("|")
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(line)]
