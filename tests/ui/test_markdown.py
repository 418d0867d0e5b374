"""Markdown to Qt rich text, checked on structure: the HTML's element tree and Qt's document.

Each test reads the HTML back the way it is used (``QTextDocument.setHtml``) and checks
blocks, lists, tables and character formats, or walks the HTML's elements; none compares
raw HTML strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import (
    QFont,
    QTextBlock,
    QTextBlockFormat,
    QTextDocument,
    QTextFormat,
    QTextListFormat,
    QTextTable,
)

from app.ui.chat.markdown import (
    GAP_PX,
    MarkdownTheme,
    code_chunks,
    code_html,
    highlight_code,
    render_markdown,
)

THEME = MarkdownTheme()
CODE = 'def area(r: float) -> float:\n    """Circle."""\n    return 3.14 * r ** 2  # <approx>\n'
VOID = frozenset({"br", "hr", "img", "input"})


@dataclass
class Element:
    """One HTML element and what it holds (elements and text)."""

    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Element | str] = field(default_factory=list)

    def all(self, tag: str) -> list[Element]:
        """Every element below this one with ``tag``, in document order."""
        found = []
        for child in self.children:
            if isinstance(child, Element):
                found += [child] if child.tag == tag else []
                found += child.all(tag)
        return found

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _TreeBuilder(HTMLParser):
    """Builds the element tree, failing on an end tag that closes the wrong element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("root")
        self.open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.open[-1].children.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        assert self.open[-1].tag == tag, f"</{tag}> closes <{self.open[-1].tag}>"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def _tree(markdown: str, **options: bool) -> Element:
    builder = _TreeBuilder()
    builder.feed(render_markdown(markdown, THEME, **options))
    builder.close()
    assert builder.open == [builder.root], "unclosed elements"
    return builder.root


@dataclass(frozen=True)
class Run:
    """A stretch of text with one character format, as Qt read it."""

    text: str
    bold: bool
    italic: bool
    strike: bool
    href: str
    mono: bool
    colour: str


def _doc(markdown: str, **options: bool) -> QTextDocument:
    doc = QTextDocument()
    doc.setHtml(render_markdown(markdown, THEME, **options))
    return doc


def _blocks(doc: QTextDocument) -> list[QTextBlock]:
    """The document's blocks (only valid while ``doc`` is alive: keep it in a variable)."""
    found, block = [], doc.begin()
    while block.isValid():
        found.append(block)
        block = block.next()
    return found


def _runs(doc: QTextDocument) -> list[Run]:
    runs = []
    for block in _blocks(doc):
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            fmt = fragment.charFormat()
            runs.append(
                Run(
                    fragment.text(),
                    fmt.fontWeight() >= QFont.Weight.DemiBold,
                    fmt.fontItalic(),
                    fmt.fontStrikeOut(),
                    fmt.anchorHref(),
                    "monospace" in (fmt.fontFamilies() or []),
                    fmt.foreground().color().name(),
                )
            )
            it += 1
    return runs


def _run(doc: QTextDocument, text: str) -> Run:
    (found,) = [r for r in _runs(doc) if r.text == text]
    return found


def _links(doc: QTextDocument) -> dict[str, str]:
    return {r.text: r.href for r in _runs(doc) if r.href}


def _tables(doc: QTextDocument) -> list[QTextTable]:
    return [f for f in doc.rootFrame().childFrames() if isinstance(f, QTextTable)]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_headings(qapp, level: int) -> None:
    doc = _doc("#" * level + " Big *title*\n\nbody")
    first, second = _blocks(doc)[:2]
    assert first.text() == "Big title"
    assert first.blockFormat().headingLevel() == level
    assert _run(doc, "title").italic
    assert second.blockFormat().headingLevel() == 0


def test_setext_heading(qapp) -> None:
    doc = _doc("Title\n=====")
    (block,) = _blocks(doc)
    assert (block.text(), block.blockFormat().headingLevel()) == ("Title", 1)


def test_top_level_blocks_are_a_gap_apart(qapp) -> None:
    doc = _doc("one\n\ntwo")
    first, second = _blocks(doc)
    assert first.blockFormat().topMargin() == 0
    assert second.blockFormat().topMargin() == GAP_PX


def test_bold_italic_together_nest_properly(qapp) -> None:
    """Bug: ``***both***`` came out as ``<b><i>both</b></i>``."""
    root = _tree("***both*** and ___again___")
    for outer in root.all("i"):
        (inner,) = outer.all("b")
        assert outer.children == [inner]  # <i><b>...</b></i>, closed in order (the builder)
    assert [i.text() for i in root.all("i")] == ["both", "again"]
    both = _run(_doc("***both***"), "both")
    assert both.bold and both.italic


def test_link_with_parentheses_in_its_url(qapp) -> None:
    """Bug: a link to ``.../Foo_(bar)`` was cut at the first ``)``."""
    url = "https://en.wikipedia.org/wiki/Foo_(bar)"
    doc = _doc(f"Read [the page]({url}) or {url} now.")
    assert _links(doc) == {"the page": url, url: url}
    assert doc.toPlainText() == f"Read the page or {url} now."


def test_bold_across_a_line_break(qapp) -> None:
    """Bug: ``**a\\nb**`` was not bold."""
    doc = _doc("**a\nb** c")
    assert _run(doc, "a b").bold
    assert not _run(doc, " c").bold


def test_single_newlines_join_into_one_paragraph(qapp) -> None:
    """Bug: each newline was a hard break, so wrapped paragraphs came out ragged."""
    doc = _doc("a paragraph wrapped\nat eighty columns")
    (block,) = _blocks(doc)
    assert block.text() == "a paragraph wrapped at eighty columns"
    doc = _doc("first  \nsecond\\\nthird")  # Markdown's own hard breaks
    (block,) = _blocks(doc)
    assert block.text() == "first\u2028second\u2028third"
    doc = _doc("first\nsecond", hard_breaks=True)
    (block,) = _blocks(doc)
    assert block.text() == "first\u2028second"


def test_lazy_block_quote_lines_stay_in_the_quote(qapp) -> None:
    """Bug: a quote's continuation line without ``>`` fell out of the quote."""
    root = _tree("> quoted **x**\nlazy line\n\nafter")
    (quote,) = root.all("blockquote")
    assert quote.text() == "quoted x lazy line"
    doc = _doc("> quoted **x**\nlazy line\n\nafter")
    quoted, after = _blocks(doc)
    assert quoted.text() == "quoted x lazy line"
    assert quoted.blockFormat().leftMargin() > 0
    assert after.blockFormat().leftMargin() == 0


def test_indented_code_is_code(qapp) -> None:
    """Bug: four-space indented code was shown as a paragraph."""
    doc = _doc("Run this:\n\n    x = 1\n    if x:\n        y = 2\n\nDone.")
    assert "x = 1\nif x:\n    y = 2" in doc.toPlainText()
    code = [r for r in _runs(doc) if "x" in r.text and r.mono]
    assert code, "the code is in the code font"
    assert _tables(doc), "on its code block background"


def test_bullet_list_with_nested_items(qapp) -> None:
    doc = _doc("- one\n- two\n  - inner\n    1. deep\n- three")
    blocks = _blocks(doc)
    assert [b.text() for b in blocks] == ["one", "two", "inner", "deep", "three"]
    lists = [b.textList() for b in blocks]
    assert all(lst is not None for lst in lists)
    assert lists[0] is lists[1] is lists[4]
    indents = [lst.format().indent() for lst in lists]
    assert indents[2] > indents[1] and indents[3] > indents[2]
    assert lists[3].format().style() == QTextListFormat.Style.ListDecimal


def test_ordered_list_keeps_its_start(qapp) -> None:
    doc = _doc("3. three\n4. four")
    first, second = _blocks(doc)
    assert first.textList() is second.textList()
    assert first.textList().format().start() == 3


def test_loose_list_is_one_list_and_keeps_item_paragraphs(qapp) -> None:
    root = _tree("1. a\n\n   more of a\n\n2. b")
    (ol,) = root.all("ol")
    assert [li.text() for li in ol.all("li")] == ["amore of a", "b"]
    assert len(root.all("p")) == 1  # the item's second paragraph
    doc = _doc("1. a\n\n   more of a\n\n2. b")
    blocks = _blocks(doc)
    assert [b.text() for b in blocks] == ["a", "more of a", "b"]
    assert blocks[0].textList() is blocks[2].textList()


def test_task_lists(qapp) -> None:
    doc = _doc("- [ ] to do\n- [x] done\n- plain")
    blocks = _blocks(doc)
    assert [b.text() for b in blocks] == ["to do", "done", "plain"]
    markers = [b.blockFormat().marker() for b in blocks]
    assert markers == [
        QTextBlockFormat.MarkerType.Unchecked,
        QTextBlockFormat.MarkerType.Checked,
        QTextBlockFormat.MarkerType.NoMarker,
    ]


def test_table_with_alignment(qapp) -> None:
    doc = _doc("| Name | Size | Note |\n|:---|---:|:-:|\n| a | 1 | x |\n| b \\| c | 22 | `y` |")
    (table,) = _tables(doc)
    assert (table.rows(), table.columns()) == (3, 3)
    assert table.format().border() > 0

    def cell(row: int, column: int) -> QTextBlock:
        return table.cellAt(row, column).firstCursorPosition().block()

    assert [cell(0, c).text() for c in range(3)] == ["Name", "Size", "Note"]
    assert cell(2, 0).text() == "b | c"
    assert _run(doc, "Name").bold  # header cells
    aligns = [cell(1, c).blockFormat().alignment() for c in range(3)]
    assert aligns[0] & Qt.AlignmentFlag.AlignLeft
    assert aligns[1] & Qt.AlignmentFlag.AlignRight
    assert aligns[2] & Qt.AlignmentFlag.AlignHCenter
    assert _run(doc, "\u00a0y\u00a0").mono


def test_strikethrough_and_inline_code(qapp) -> None:
    doc = _doc("Use `a < b` with ~~old~~ **bold** *it*.")
    assert _run(doc, "old").strike
    assert _run(doc, "bold").bold and _run(doc, "it").italic
    code = _run(doc, "\u00a0a < b\u00a0")
    assert code.mono and not code.bold


def test_emphasis_markers_inside_code_stay_literal(qapp) -> None:
    doc = _doc("`**not bold**` and 2 * 3 * 4")
    assert doc.toPlainText() == " **not bold**  and 2 * 3 * 4"  # toPlainText: nbsp as space
    assert not any(r.bold or r.italic for r in _runs(doc))


def test_html_in_the_source_is_shown_as_text(qapp) -> None:
    source = '<img src="x.png"> <b>hi</b>\n\n<script>alert(1)</script>\n\n<div>\n*x*\n</div>'
    root = _tree(source)
    assert not [tag for tag in ("img", "b", "script", "div") if root.all(tag)]
    doc = _doc(source)
    text = doc.toPlainText()
    assert '<img src="x.png"> <b>hi</b>' in text and "<script>alert(1)</script>" in text
    assert not any(r.bold for r in _runs(doc))
    assert doc.toHtml().count("<img") == 0


def test_only_web_and_mail_links_are_links(qapp) -> None:
    doc = _doc(
        "[click](javascript:alert(1)) [rel](/local) [mail](mailto:a@b.org) "
        "[docs](https://x.org/a?b=1&c=2) ![chart](https://x.org/c.png)"
    )
    assert _links(doc) == {
        "mail": "mailto:a@b.org",
        "docs": "https://x.org/a?b=1&c=2",
        "chart": "https://x.org/c.png",
    }
    assert "rel" in doc.toPlainText()  # its text stays, as text


def test_bare_urls_become_links_without_trailing_punctuation(qapp) -> None:
    doc = _doc("See https://example.com/x. Or (https://example.com/y), or `https://no.org`.")
    assert _links(doc) == {
        "https://example.com/x": "https://example.com/x",
        "https://example.com/y": "https://example.com/y",
    }


def test_block_quote_with_paragraphs_and_a_rule(qapp) -> None:
    root = _tree("> first **x**\n>\n> second\n\n---\n\nafter")
    (quote,) = root.all("blockquote")
    assert quote.text() == "first xsecond"
    assert len(root.all("hr")) == 1
    doc = _doc("> first **x**\n>\n> second\n\n---\n\nafter")
    blocks = _blocks(doc)
    assert [b.text() for b in blocks[:2]] == ["first x", "second"]
    assert all(b.blockFormat().leftMargin() > 0 for b in blocks[:2])
    ruler = QTextFormat.Property.BlockTrailingHorizontalRulerWidth
    assert [b.blockFormat().hasProperty(ruler) for b in blocks[2:]] == [True, False]


def test_fenced_code_is_highlighted_and_exact(qapp) -> None:
    spans = highlight_code(CODE, "python", dark=False)
    colours = set(re.findall(r"color:(#[0-9a-fA-F]{6})", spans))
    assert len(colours) >= 3  # keywords, strings, comments ...
    dark = highlight_code(CODE, "python", dark=True)
    assert set(re.findall(r"color:(#[0-9a-fA-F]{6})", dark)) != colours
    span_doc = QTextDocument()
    span_doc.setHtml(f"<pre>{spans}</pre>")
    assert span_doc.toPlainText() == CODE.removesuffix("\n")  # every character, escaped
    doc = _doc(f"Intro\n\n```python\n{CODE}```")
    assert CODE.removesuffix("\n") in doc.toPlainText()
    code_runs = [r for r in _runs(doc) if r.mono and r.text.strip()]
    assert len({r.colour for r in code_runs}) >= 3, "Pygments' colours reach Qt"
    assert any("<approx>" in r.text for r in code_runs)


def test_unknown_language_is_plain_text(qapp) -> None:
    assert highlight_code("x <- 1", "no-such-language", dark=False) == "x &lt;- 1"


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
