"""Markdown to the HTML subset that Qt's rich text shows, with Pygments colours for code.

markdown-it-py parses (CommonMark with GFM tables, strike-through, task lists and bare-URL
links; raw HTML shown as text); ``markdown_render`` writes its tokens as Qt rich text and
``markdown_code`` colours code. :func:`split_blocks` cuts a message into its top-level
blocks, as markdown-it's block parser sees them, so that a reply being streamed
re-renders only its last block; every code block, even one inside a list, is a block of
its own (it gets its own widget and Copy button).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from app.ui.chat import markdown_code
from app.ui.chat.markdown_code import (
    CODE_CHUNK_LINES,
    DARK_CODE_STYLE,
    LIGHT_CODE_STYLE,
    code_chunks,
    code_html,
    highlight_code,
)
from app.ui.chat.markdown_render import (
    CODE_TOKENS,
    GAP_PX,
    HEADING_SCALE,
    LINK_SCHEMES,
    MarkdownTheme,
    block_parser,
    code_language,
    markdown_parser,
    render_tokens,
)

if TYPE_CHECKING:  # markdown_render is the module that uses markdown-it
    from markdown_it.token import Token

__all__ = [  # re-exported: code from markdown_code, the theme from markdown_render
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

_NEWLINE = re.compile(r"\r\n?")


class BlockKind(Enum):
    """What a block of a message is."""

    TEXT = "text"
    CODE = "code"


@dataclass(frozen=True, slots=True)
class Block:
    """A piece of a message: Markdown text, or the code of one fenced or indented block."""

    kind: BlockKind
    source: str
    language: str = ""


def render_markdown(source: str, theme: MarkdownTheme, *, hard_breaks: bool = False) -> str:
    """Markdown to HTML for a QLabel.

    Args:
        source: The Markdown text.
        theme: Colours and fonts.
        hard_breaks: A single newline breaks the line, instead of joining the lines as
            CommonMark does.

    Returns:
        HTML in Qt's rich-text subset; top-level blocks are ``GAP_PX`` apart.
    """
    return render_tokens(markdown_parser().parse(source), theme, hard_breaks=hard_breaks)


def split_blocks(source: str) -> list[Block]:
    """Cut a message into its top-level blocks: Markdown text, and code.

    A code block nested in a list or a quote is cut out into its own block, the text
    around it kept in order. An unclosed fence runs to the end, as it does while a reply
    streams. Link reference definitions are added to each text block that may use one.

    Returns:
        The blocks in order; empty for blank text.
    """
    return _split(_NEWLINE.sub("\n", source).replace("\x00", "\ufffd"))  # as markdown-it


def warm_up() -> None:
    """Build the Markdown parsers and load Pygments' tables now, not during the first reply."""
    markdown_code.warm_up()
    split_blocks("x")
    render_markdown("*x*", MarkdownTheme())


_Entry = tuple[int, list[Block]]  # a top-level block's first line, and the blocks it gives


class _GrowingSplit:
    """Splits text, parsing a text that extends the last one from its last block on.

    A streamed reply is split again at every update; parsing all of it each time cost
    O(length) per update. Blocks before the last one are closed: text added after them
    cannot change them (CommonMark decides a block's end from the lines up to it), so
    only the last block and what follows are parsed again.
    """

    def __init__(self) -> None:
        self._text = ""
        self._entries: list[_Entry] = []
        self._definitions = ""  # the text's link reference definitions

    def __call__(self, text: str) -> list[Block]:
        lines = text.split("\n")
        entries = None
        if self._entries and not self._definitions and text.startswith(self._text):
            entries = self._grown(lines)
        if entries is None:
            env: dict[str, object] = {}
            tokens = block_parser().parse(text, env)
            entries = _entries(tokens, lines)
            self._definitions = _definitions(tokens, lines) if env.get("references") else ""
        self._text, self._entries = text, entries
        blocks = [block for _, found in entries for block in found]
        if not self._definitions:
            return blocks
        return [  # every text block that may use a reference gets the definitions
            Block(b.kind, f"{b.source}\n\n{self._definitions}")
            if b.kind is BlockKind.TEXT and "]" in b.source
            else b
            for b in blocks
        ]

    def _grown(self, lines: list[str]) -> list[_Entry] | None:
        """The entries of the grown text, or None if its new part defines references."""
        restart = self._entries[-1][0]
        tail = lines[restart:]
        env: dict[str, object] = {}
        tokens = block_parser().parse("\n".join(tail), env)
        if env.get("references"):
            return None
        return self._entries[:-1] + [(restart + n, found) for n, found in _entries(tokens, tail)]


_split = _GrowingSplit()  # one is enough: one reply streams at a time, other text parses whole


def _entries(tokens: list[Token], lines: list[str]) -> list[_Entry]:
    """The blocks of a parsed text by top-level token, with nested code cut out."""
    entries: list[_Entry] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        end = _closing(tokens, i)
        if token.map is None:
            i = end + 1
            continue
        start_line, end_line = token.map
        nested = [t for t in tokens[i + 1 : end] if t.type in CODE_TOKENS and t.map]
        blocks: list[Block] = []
        if token.type in CODE_TOKENS:
            blocks.append(_code(token))
        elif not nested:
            blocks += _text(lines[start_line:end_line])
        else:
            code = nested[0]
            assert code.map is not None
            code_start, code_end = code.map
            blocks += _text(lines[start_line:code_start])
            blocks.append(_code(code))
            items = (t.map[0] for t in tokens[i + 1 : end] if t.type == "list_item_open" and t.map)
            next_item = min((n for n in items if n >= code_end), default=end_line)
            # the rest of the item the code was in, then the items after it, each parsed
            # again on its own (the item's text would otherwise run on into the next item)
            blocks += _split_again(_outdent(lines[code_end:next_item]))
            blocks += _split_again(lines[next_item:end_line])
        entries.append((start_line, blocks))
        i = end + 1
    return entries


def _closing(tokens: list[Token], i: int) -> int:
    """The index of the token closing the top-level block that opens at ``i``."""
    if tokens[i].nesting != 1:
        return i
    j = i + 1
    while tokens[j].level != 0:
        j += 1
    return j


def _code(token: Token) -> Block:
    return Block(BlockKind.CODE, token.content.removesuffix("\n"), code_language(token.info))


def _text(lines: list[str]) -> list[Block]:
    """A text block of these lines, blank ones at either end left out; none if all blank."""
    kept = [n for n, line in enumerate(lines) if line.strip()]
    return [Block(BlockKind.TEXT, "\n".join(lines[kept[0] : kept[-1] + 1]))] if kept else []


def _split_again(lines: list[str]) -> list[Block]:
    if not any(line.strip() for line in lines):
        return []
    text = "\n".join(lines)
    return [block for _, found in _entries(block_parser().parse(text), lines) for block in found]


def _outdent(lines: list[str]) -> list[str]:
    """The lines moved left by the first one's indent, up to the first line indented less."""
    first = next((line for line in lines if line.strip()), "")
    indent = len(first) - len(first.lstrip(" "))
    out: list[str] = []
    for n, line in enumerate(lines):
        if line.strip() and len(line) - len(line.lstrip(" ")) < indent:
            return out + lines[n:]
        out.append(line[indent:])
    return out


def _definitions(tokens: list[Token], lines: list[str]) -> str:
    """The link reference definitions: the lines no block covers (they make no token)."""
    covered = [False] * len(lines)
    for token in tokens:
        if token.level == 0 and token.map:
            first, end = token.map
            covered[first:end] = [True] * (end - first)
    return "\n".join(s for s, used in zip(lines, covered, strict=True) if not used).strip()
