"""Cutting a message into blocks, and streaming: only the last, growing block re-renders."""

from __future__ import annotations

import re

import pytest
from PySide6.QtGui import QTextDocument, QTextListFormat

from app.ui.chat import message_widgets
from app.ui.chat.markdown import Block, BlockKind, MarkdownTheme, _GrowingSplit, split_blocks
from app.ui.chat.message_widgets import CodeBlockView, MarkdownBody

TEXT, CODE = BlockKind.TEXT, BlockKind.CODE
REPLY = """# Loading the data

Here is how to read the file with `pandas`. The function below is **fast
enough** for a few million rows, and *easy* to test.

```python
import pandas as pd


def load(path: str) -> pd.DataFrame:
    return pd.read_csv(path)
```

| Option | Default |
|:-------|--------:|
| `path` | none |

1. Install pandas:
   ```bash
   pip install pandas
   ```
   It takes a minute.
2. Call `load("scores.csv")`.
   - Check the row count.
   - [x] Look at the first rows.

> Tip: a large file reads faster
with `engine="pyarrow"`.

    frame.head()

Setext title
------------

That's all: see https://pandas.pydata.org/docs/ ~~or not~~.
"""


def _pieces(text: str) -> list[str]:
    """``text`` cut like a tokenizer would (word-ish pieces), as a reply streams in."""
    return re.findall(r"\s*\S{1,4}|\s+", text)


def test_split_blocks_text_and_code(qapp) -> None:
    source = "Intro\n\nMore text\n\n```python\nx = 1\n\ny = 2\n```\nAfter"
    assert split_blocks(source) == [
        Block(TEXT, "Intro"),
        Block(TEXT, "More text"),
        Block(CODE, "x = 1\n\ny = 2", "python"),
        Block(TEXT, "After"),
    ]


def test_split_blocks_one_per_top_level_block(qapp) -> None:
    blocks = split_blocks("# Title\nText right under it\n> quote\nlazy\n\n---\n| a |\n|---|\n| 1 |")
    assert [b.source for b in blocks] == [
        "# Title",
        "Text right under it",
        "> quote\nlazy",  # a lazy continuation line stays in its quote
        "---",
        "| a |\n|---|\n| 1 |",
    ]


def test_split_blocks_keeps_a_loose_list_together(qapp) -> None:
    blocks = split_blocks("- a\n\n- b\n\n  more of b\n\nNext")
    assert [b.source for b in blocks] == ["- a\n\n- b\n\n  more of b", "Next"]


def test_indented_code_is_a_code_block(qapp) -> None:
    assert split_blocks("Run:\n\n    make all\n      --quiet\n\nDone") == [
        Block(TEXT, "Run:"),
        Block(CODE, "make all\n  --quiet"),
        Block(TEXT, "Done"),
    ]


def test_an_unclosed_fence_is_code_up_to_the_end(qapp) -> None:
    assert split_blocks("Text\n\n```py\nprint(1)\n\nx = 2") == [
        Block(TEXT, "Text"),
        Block(CODE, "print(1)\n\nx = 2", "py"),
    ]
    assert split_blocks("Text\n```py\nprint(1)\n```\nAfter **it**") == [
        Block(TEXT, "Text"),
        Block(CODE, "print(1)", "py"),
        Block(TEXT, "After **it**"),
    ]


def test_code_in_a_list_is_its_own_block_and_the_list_goes_on(qapp) -> None:
    blocks = split_blocks("1. Run:\n   ```bash\n   make all\n   ```\n   Then wait.\n2. Done")
    assert blocks == [
        Block(TEXT, "1. Run:"),
        Block(CODE, "make all", "bash"),
        Block(TEXT, "Then wait."),
        Block(TEXT, "2. Done"),
    ]
    doc = QTextDocument()
    doc.setHtml(message_widgets.render_markdown(blocks[3].source, MarkdownTheme()))
    numbered = doc.begin().textList()
    assert numbered.format().style() == QTextListFormat.Style.ListDecimal
    assert numbered.format().start() == 2


def test_link_reference_definitions_reach_the_blocks_that_use_them(qapp) -> None:
    blocks = split_blocks("See [the docs][1].\n\nNo link here.\n\n[1]: https://x.org")
    assert [b.source for b in blocks] == [
        "See [the docs][1].\n\n[1]: https://x.org",
        "No link here.",
    ]
    doc = QTextDocument()
    doc.setHtml(message_widgets.render_markdown(blocks[0].source, MarkdownTheme()))
    assert doc.toPlainText() == "See the docs."


def test_a_growing_text_splits_as_a_fresh_parse_would(qapp) -> None:
    growing = _GrowingSplit()
    text = ""
    for piece in _pieces(REPLY):
        text += piece
        assert growing(text) == _GrowingSplit()(text), text


@pytest.mark.parametrize("reply", [REPLY, REPLY.replace("\n\n", "\n")])
def test_streaming_only_changes_the_last_block(qapp, reply: str) -> None:
    final = split_blocks(reply)
    text = ""
    for piece in _pieces(reply):
        text += piece
        blocks = split_blocks(text)
        assert blocks[:-1] == final[: len(blocks) - 1], text


def test_streaming_re_renders_only_the_last_block(qtbot, monkeypatch) -> None:
    body = MarkdownBody()
    qtbot.addWidget(body)
    rendered: list[str] = []
    coded: list[CodeBlockView] = []
    render_markdown, set_code = message_widgets.render_markdown, CodeBlockView.set_code

    def counting_render(source: str, theme: MarkdownTheme, *, hard_breaks: bool = False) -> str:
        rendered.append(source)
        return render_markdown(source, theme, hard_breaks=hard_breaks)

    def counting_set_code(view: CodeBlockView, code: str, language: str, theme) -> str:  # noqa: ANN001
        coded.append(view)
        return set_code(view, code, language, theme)

    monkeypatch.setattr(message_widgets, "render_markdown", counting_render)
    monkeypatch.setattr(CodeBlockView, "set_code", counting_set_code)
    text, updates = "", 0
    for piece in _pieces(REPLY):
        text += piece
        before = body.block_widgets
        rendered.clear()
        coded.clear()
        body.render(text)
        updates += 1
        after = body.block_widgets
        kept = max(len(before) - 1, 0)  # every block but the last was final
        assert after[:kept] == before[:kept], text
        last_sources = [b.source for b in split_blocks(text)[kept:]]
        assert all(source in last_sources for source in rendered), text
        assert all(view in after[kept:] for view in coded), text
    assert updates > 100
    fresh = MarkdownBody()
    qtbot.addWidget(fresh)
    fresh.render(REPLY)
    assert body.html() == fresh.html()
    kinds = [type(w).__name__ for w in body.block_widgets]
    assert kinds.count("CodeBlockView") == 3  # the fence, the one in the list, the indented
