"""Markdown to Qt rich text: each element, checked on the HTML and on Qt's own document."""

from __future__ import annotations

import html
import re

import pytest
from PySide6.QtGui import QTextDocument, QTextTable

from app.ui.markdown import (
    Block,
    BlockKind,
    MarkdownTheme,
    code_chunks,
    code_html,
    highlight_code,
    render_markdown,
    split_blocks,
)

THEME = MarkdownTheme()
CODE = 'def area(r: float) -> float:\n    """Circle."""\n    return 3.14 * r ** 2  # <approx>\n'


def _doc(markdown: str) -> QTextDocument:
    doc = QTextDocument()
    doc.setHtml(render_markdown(markdown, THEME))
    return doc


def _blocks(doc: QTextDocument) -> list:
    found, block = [], doc.begin()
    while block.isValid():
        found.append(block)
        block = block.next()
    return found


def _plain(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


@pytest.mark.parametrize("level", [1, 2, 3])
def test_headings(qapp, level: int) -> None:
    doc = _doc("#" * level + " Big title\n\nbody")
    first, second = _blocks(doc)[:2]
    assert first.text() == "Big title"
    assert first.blockFormat().headingLevel() == level
    assert second.blockFormat().headingLevel() == 0


def test_setext_heading(qapp) -> None:
    assert "<h1" in render_markdown("Title\n=====", THEME)


def test_bullet_list_with_nested_items(qapp) -> None:
    doc = _doc("- one\n- two\n  - inner\n- three")
    blocks = _blocks(doc)
    assert [b.text() for b in blocks] == ["one", "two", "inner", "three"]
    assert all(b.textList() is not None for b in blocks)
    assert blocks[2].textList() is not blocks[1].textList()  # its own, nested list
    assert blocks[2].textList().format().indent() > blocks[1].textList().format().indent()


def test_ordered_list_keeps_its_start(qapp) -> None:
    out = render_markdown("3. three\n4. four", THEME)
    assert '<ol start="3"' in out
    assert "<li>three</li><li>four</li>" in out


def test_list_items_with_a_blank_line_stay_one_list(qapp) -> None:
    out = render_markdown("1. a\n\n2. b", THEME)
    assert out.count("<ol") == 1


def test_table_with_alignment(qapp) -> None:
    doc = _doc("| Name | Size |\n|:---|---:|\n| a | 1 |\n| b \\| c | 22 |")
    tables = [f for f in doc.rootFrame().childFrames() if isinstance(f, QTextTable)]
    assert len(tables) == 1
    table = tables[0]
    assert (table.rows(), table.columns()) == (3, 2)
    assert table.cellAt(2, 0).firstCursorPosition().block().text() == "b | c"
    assert table.format().border() > 0
    out = render_markdown("| Name | Size |\n|:---|---:|\n| a | 1 |", THEME)
    assert '<th align="right"' in out and f'bgcolor="{THEME.header_background}"' in out


def test_inline_code_emphasis_and_links(qapp) -> None:
    out = render_markdown(
        "Use `a < b` with **bold**, *it*, ~~old~~ and [docs](https://x.org/a?b=1&c=2).", THEME
    )
    assert "<code" in out and "&nbsp;a &lt; b&nbsp;</code>" in out
    assert "<b>bold</b>" in out and "<i>it</i>" in out and "<s>old</s>" in out
    assert '<a href="https://x.org/a?b=1&amp;c=2"' in out


def test_emphasis_markers_inside_code_stay_literal(qapp) -> None:
    out = render_markdown("`**not bold**` and 2 * 3 * 4", THEME)
    assert "<b>" not in out and "<i>" not in out
    assert "**not bold**" in out


def test_raw_html_and_odd_links_are_shown_as_text(qapp) -> None:
    out = render_markdown('<img src="x"> [click](javascript:alert(1)) <b>hi</b>', THEME)
    assert "<img" not in out and "<b>hi</b>" not in out
    assert "&lt;img" in out
    assert "javascript" not in out.split("click")[0]
    assert 'href="javascript' not in out


def test_bare_urls_become_links_without_trailing_punctuation(qapp) -> None:
    out = render_markdown("See https://example.com/x.", THEME)
    assert '<a href="https://example.com/x"' in out
    assert out.endswith("</a>.</p>")


def test_single_newlines_break_lines(qapp) -> None:
    assert "first<br>second" in render_markdown("first\nsecond", THEME)
    assert "first second" in render_markdown("first\nsecond", THEME, hard_breaks=False)


def test_block_quote_and_rule(qapp) -> None:
    out = render_markdown("> quoted **x**\n\n---\n\nafter", THEME)
    assert "<blockquote" in out and "<b>x</b>" in out
    assert "<hr>" in out


def test_fenced_code_is_highlighted_and_exact(qapp) -> None:
    spans = highlight_code(CODE, "python", dark=False)
    colours = set(re.findall(r"color:(#[0-9a-fA-F]{6})", spans))
    assert len(colours) >= 3  # keywords, strings, comments ...
    assert _plain(spans) == CODE  # every character kept, HTML escaped
    assert "&lt;approx&gt;" in spans
    dark = highlight_code(CODE, "python", dark=True)
    assert set(re.findall(r"color:(#[0-9a-fA-F]{6})", dark)) != colours
    doc = _doc(f"```python\n{CODE}```")
    assert "return 3.14" in doc.toPlainText()


def test_unknown_language_is_plain_text(qapp) -> None:
    assert highlight_code("x <- 1", "no-such-language", dark=False) == "x &lt;- 1"


def test_split_blocks_text_and_code(qapp) -> None:
    source = "Intro\n\nMore text\n\n```python\nx = 1\n\ny = 2\n```\nAfter"
    assert split_blocks(source) == [
        Block(BlockKind.TEXT, "Intro"),
        Block(BlockKind.TEXT, "More text"),
        Block(BlockKind.CODE, "x = 1\n\ny = 2", "python"),
        Block(BlockKind.TEXT, "After"),
    ]


def test_split_blocks_keeps_a_loose_list_together(qapp) -> None:
    blocks = split_blocks("- a\n\n- b\n\n  more of b\n\nNext")
    assert [b.source for b in blocks] == ["- a\n\n- b\n\n  more of b", "Next"]


def test_split_blocks_streaming_fence_and_indented_fence(qapp) -> None:
    assert split_blocks("Text\n```py\nprint(1)") == [
        Block(BlockKind.TEXT, "Text"),
        Block(BlockKind.CODE, "print(1)", "py"),
    ]
    blocks = split_blocks("1. Run:\n   ```bash\n   make all\n   ```\n2. Done")
    assert blocks[1] == Block(BlockKind.CODE, "make all", "bash")
    assert '<ol start="2"' in render_markdown(blocks[2].source, THEME)


def test_code_chunks_cut_long_code_at_top_level_lines(qapp) -> None:
    functions = [
        f"def f{i}(x):\n    '''Doc.\n\n    More.\n    '''\n    return x\n" for i in range(12)
    ]
    code = "\n".join(functions)
    chunks = code_chunks(code, size=10)
    assert len(chunks) > 2
    assert "\n".join(chunks) == code
    assert all(chunk.startswith("def ") for chunk in chunks)  # never inside a docstring
    flat = "\n".join(f"x{i} = {i}" for i in range(100))
    assert [len(c.split("\n")) for c in code_chunks(flat, size=10)] == [20] * 5
    assert code_chunks("one line") == ["one line"]


def test_code_html_keeps_blank_lines_at_both_ends(qapp) -> None:
    doc = QTextDocument()
    doc.setHtml(code_html("\nx = 1\n\n", "python", dark=False))
    assert doc.toPlainText() == "\nx = 1\n\n"
