"""markdown-it-py's tokens as the HTML subset that Qt's rich text shows.

markdown-it-py parses (CommonMark, GFM tables and strike-through, mdit-py-plugins' task
lists and bare-URL autolinks); this module only writes the tree it builds as Qt rich text:
``b``/``i``/``s``, ``code``, ``a``, ``ul``/``ol``/``li``, ``blockquote``, ``table``,
``h1``-``h6``, ``hr``, ``br`` and ``p``, with the theme's colours inline. Raw HTML is off
in the parser, so any that reaches here is shown as text; only http(s) and mailto links
become links. Code blocks are coloured by Pygments (``markdown_code``).
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode
from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

from app.ui.chat.markdown_code import highlight_code

GAP_PX = 8  # between top-level blocks, here and between a bubble's block widgets
PARAGRAPH_GAP_PX = 4  # between two paragraphs inside a list item or a quote
HEADING_SCALE = {1: 1.45, 2: 1.25, 3: 1.12, 4: 1.0, 5: 1.0, 6: 1.0}
LINK_SCHEMES = ("http://", "https://", "mailto:")
BULLETS = ("disc", "circle", "square")  # by list depth
CODE_TOKENS = ("fence", "code_block")
_CHECKBOX = "task-list-item-checkbox"  # in the tasklists plugin's <input> token


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


@functools.cache
def markdown_parser() -> MarkdownIt:
    """The parser for a message: CommonMark with GFM's extensions, raw HTML off."""
    md = MarkdownIt("commonmark", {"html": False})
    md.enable(["table", "strikethrough"])
    md.use(tasklists_plugin)
    md.use(gfm_autolink_plugin)
    return md


@functools.cache
def block_parser() -> MarkdownIt:
    """The same block rules, without the inline pass: enough to cut a message into blocks."""
    md = MarkdownIt("commonmark", {"html": False})
    md.enable("table")
    md.core.ruler.enableOnly(["normalize", "block"])
    return md


def render_tokens(tokens: Sequence[Token], theme: MarkdownTheme, *, hard_breaks: bool) -> str:
    """Parsed Markdown as Qt rich-text HTML; top-level blocks are ``GAP_PX`` apart.

    Args:
        tokens: What :func:`markdown_parser` made of the text.
        theme: Colours and fonts.
        hard_breaks: Write a single newline as a line break instead of a space.

    Returns:
        The HTML.
    """
    return _QtHtmlWriter(theme, hard_breaks).blocks(SyntaxTreeNode(tokens).children, top=True)


class _QtHtmlWriter:
    """Writes a markdown-it syntax tree as Qt rich text; containers recurse into blocks."""

    def __init__(self, theme: MarkdownTheme, hard_breaks: bool) -> None:
        self.theme = theme
        self.hard_breaks = hard_breaks

    def blocks(self, nodes: Sequence[SyntaxTreeNode], *, top: bool = False, depth: int = 0) -> str:
        """Block nodes in order; at the top they are ``GAP_PX`` apart."""
        out = []
        for n, node in enumerate(nodes):
            gap = GAP_PX if top and n else 0
            out.append(self._block(node, gap, depth, top=top, first=n == 0))
        return "".join(out)

    def _block(self, node: SyntaxTreeNode, gap: int, depth: int, *, top: bool, first: bool) -> str:
        margins = f"margin-top:{gap}px; margin-bottom:0px"
        kind = node.type
        if kind == "paragraph":
            return self._paragraph(node, margins, top=top, first=first)
        if kind == "heading":
            return self._heading(int(node.tag[1]), node, gap)
        if kind in ("bullet_list", "ordered_list"):
            return self._list(node, margins, depth)
        if kind == "blockquote":
            inner = self.blocks(node.children, depth=depth)
            return (
                f'<blockquote style="{margins}; margin-left:14px; color:{self.theme.muted}">'
                f"{inner}</blockquote>"
            )
        if kind in CODE_TOKENS:
            code = node.content.removesuffix("\n")
            return self._code_block(code, code_language(node.info), margins)
        if kind == "table":
            return self._table(node, margins)
        if kind == "hr":
            return "<hr>"
        # these parsers make no other block; were there one, its text shows, escaped
        return f'<p style="{margins}">{_escape(node.content)}</p>'

    def _paragraph(self, node: SyntaxTreeNode, margins: str, *, top: bool, first: bool) -> str:
        body = self.inline(node.children)
        if top:
            return f'<p style="{margins}">{body}</p>'
        if first:
            return body  # an item's or quote's first text: no paragraph, no margins
        gap = 0 if node.hidden else PARAGRAPH_GAP_PX  # hidden: a tight list's
        return f'<p style="margin-top:{gap}px; margin-bottom:0px">{body}</p>'

    def _heading(self, level: int, node: SyntaxTreeNode, gap: int) -> str:
        size = self.theme.base_pt * HEADING_SCALE[level]
        top = gap + (4 if gap else 0)
        return (
            f'<h{level} style="margin-top:{top}px; margin-bottom:0px; font-size:{size:.1f}pt">'
            f"{self.inline(node.children)}</h{level}>"
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

    def _list(self, node: SyntaxTreeNode, margins: str, depth: int) -> str:
        if node.type == "ordered_list":
            tag, kind = "ol", f' start="{node.attrs.get("start", 1)}"'
        else:
            tag, kind = "ul", f' type="{BULLETS[depth % len(BULLETS)]}"'
        items = []
        for item in node.children:
            marker = _task_marker(item)
            opening = f'<li class="{marker}">' if marker else "<li>"
            items.append(f"{opening}{self.blocks(item.children, depth=depth + 1)}</li>")
        return f'<{tag}{kind} style="{margins}">{"".join(items)}</{tag}>'

    def _table(self, node: SyntaxTreeNode, margins: str) -> str:
        t = self.theme
        out = [
            f'<table border="1" cellspacing="0" cellpadding="6" style="{margins}; '
            f'border-collapse:collapse; border-style:solid; border-color:{t.border}">'
        ]
        for section in node.children:  # thead, tbody
            for row in section.children:
                out.append("<tr>")
                for cell in row.children:
                    tag = cell.type  # th or td
                    shade = f' bgcolor="{t.header_background}"' if tag == "th" else ""
                    style = str(cell.attrs.get("style", ""))
                    align = style.removeprefix("text-align:") if style else "left"
                    out.append(
                        f'<{tag} align="{align}"{shade}>{self.inline(cell.children)}</{tag}>'
                    )
                out.append("</tr>")
        out.append("</table>")
        return "".join(out)

    def inline(self, nodes: Sequence[SyntaxTreeNode]) -> str:
        """Inline nodes (the children of an ``inline`` node are flattened) as HTML."""
        out: list[str] = []
        after_checkbox = False
        for node in nodes:
            kind = node.type
            if kind == "inline":
                out.append(self.inline(node.children))
            elif kind in ("text", "text_special"):
                text = node.content.lstrip() if after_checkbox else node.content
                out.append(_escape(text))
            elif kind == "softbreak":
                out.append("<br>" if self.hard_breaks else " ")
            elif kind == "hardbreak":
                out.append("<br>")
            elif kind == "code_inline":
                out.append(
                    f'<code style="font-family:{self.theme.code_font}; '
                    f'background-color:{self.theme.code_background}">'
                    f"&nbsp;{_escape(node.content)}&nbsp;</code>"
                )
            elif kind in ("strong", "em", "s"):
                tag = {"strong": "b", "em": "i", "s": "s"}[kind]
                out.append(f"<{tag}>{self.inline(node.children)}</{tag}>")
            elif kind == "link":
                out.append(self._anchor(str(node.attrs["href"]), self.inline(node.children)))
            elif kind == "image":  # shown as a link to the picture, named by its alt text
                src = str(node.attrs["src"])
                out.append(self._anchor(src, self.inline(node.children) or _escape(src)))
            elif kind == "html_inline" and _CHECKBOX in node.content:
                pass  # a task's checkbox: its list item is marked checked or unchecked
            else:  # raw HTML is shown as text
                out.append(self.inline(node.children) if node.children else _escape(node.content))
            after_checkbox = kind == "html_inline" and _CHECKBOX in node.content
        return "".join(out)

    def _anchor(self, url: str, label: str) -> str:
        if not url.lower().startswith(LINK_SCHEMES):
            return label
        href = html.escape(url, quote=True)
        return f'<a href="{href}" style="color:{self.theme.link}">{label}</a>'


def code_language(info: str) -> str:
    """A fence's language: the first word of its info string, lower case ("" for none)."""
    words = info.split(maxsplit=1)
    return words[0].lower() if words else ""


def _task_marker(item: SyntaxTreeNode) -> str:
    """``checked`` or ``unchecked`` (Qt's list-item classes) for a task item, else ""."""
    if "task-list-item" not in str(item.attrs.get("class", "")):
        return ""
    paragraph = item.children[0]
    checkbox = paragraph.children[0].children[0]
    return "checked" if 'checked="checked"' in checkbox.content else "unchecked"


def _escape(text: str) -> str:
    return html.escape(text, quote=False)
