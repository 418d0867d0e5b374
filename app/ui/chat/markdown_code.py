"""Code in Markdown: Pygments colours as Qt rich-text HTML, and long code cut into pieces.

Lexers are looked up by the fence's language (an unknown name falls back to plain text
without Pygments scanning its plugins); token colours come from a light or a dark style.
"""

from __future__ import annotations

import functools
import html

from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_all_lexers, get_lexer_by_name
from pygments.styles import get_style_by_name
from pygments.token import Token, _TokenType
from pygments.util import ClassNotFound

LIGHT_CODE_STYLE = "default"
DARK_CODE_STYLE = "one-dark"
CODE_CHUNK_LINES = 16


def highlight_code(code: str, language: str, *, dark: bool) -> str:
    """Code as HTML spans coloured by Pygments (no wrapper; newlines kept)."""
    out = []
    for ttype, value in _lexer(language).get_tokens(code):
        text = html.escape(value, quote=False)
        css = _token_css(ttype, dark)
        out.append(f'<span style="{css}">{text}</span>' if css else text)
    return "".join(out)


def code_html(code: str, language: str, *, dark: bool) -> str:
    """A code block's body: highlighted, wrapped at the width, whitespace kept.

    Qt drops one newline at each end of a ``pre-wrap`` block, hence the two added here.
    """
    body = highlight_code(code, language, dark=dark)
    return f'<div style="white-space:pre-wrap">\n{body}\n</div>'


def code_chunks(code: str, size: int = CODE_CHUNK_LINES) -> list[str]:
    """Cut long code into pieces of about ``size`` lines; joined with newlines, they are it.

    Each piece is highlighted and laid out on its own, so a long block streams at the cost
    of its last piece. A cut goes after a blank line followed by an unindented line (top-level
    code, seldom inside a string), so each piece lexes as it would in the whole; with no
    such place a piece is cut at ``2 * size`` lines.
    """
    lines = code.split("\n")
    chunks: list[str] = []
    start = 0
    for i in range(1, len(lines)):
        top_level = not lines[i - 1].strip() and lines[i][:1] not in ("", " ", "\t")
        if (i - start >= size and top_level) or i - start >= 2 * size:
            chunks.append("\n".join(lines[start:i]))
            start = i
    chunks.append("\n".join(lines[start:]))
    return chunks


def warm_up() -> None:
    """Load Pygments' lexer table and the Python lexer now, not during the first reply."""
    highlight_code("x = 1", "python", dark=False)


@functools.cache
def _known_languages() -> frozenset[str]:
    """Every lexer alias Pygments has (read from its table, no lexer is imported)."""
    lexers = get_all_lexers(plugins=False)
    return frozenset(alias for _, aliases, _, _ in lexers for alias in aliases)


@functools.lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer:
    # an unknown name would make Pygments scan every plugin (~100 ms), so check first;
    # while a fence streams in, its language arrives a few letters at a time
    options = {"stripnl": False, "ensurenl": False}
    if language in _known_languages():
        try:
            return get_lexer_by_name(language, **options)
        except ClassNotFound:
            pass
    return TextLexer(**options)


@functools.lru_cache(maxsize=1024)
def _token_css(ttype: _TokenType, dark: bool) -> str:
    if ttype in (Token, Token.Text, Token.Text.Whitespace):
        return ""  # plain text takes the palette's colour
    style = get_style_by_name(DARK_CODE_STYLE if dark else LIGHT_CODE_STYLE)
    found = style.style_for_token(ttype)
    parts = []
    if found["color"]:
        parts.append(f"color:#{found['color']}")
    if found["bold"]:
        parts.append("font-weight:600")
    if found["italic"]:
        parts.append("font-style:italic")
    return "; ".join(parts)
