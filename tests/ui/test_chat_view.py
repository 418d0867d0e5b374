"""The transcript: Markdown bubbles, actions, inline edit, images, scrolling, streaming."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette
from PySide6.QtWidgets import QApplication, QLabel

from app.core import events as ev
from app.core.chat.messages import Role
from app.ui.chat.chat_view import ChatView, ShownMessage
from app.ui.chat.message_widgets import THUMB_PX, CodeBlockView, ImageViewerDialog
from app.ui.theme import dark_palette

CODE = "def greet(name):\n    return f'hi {name}'  # <friendly>\n\n\nprint(greet('x'))"
REPLY = (
    "# Plan\n\nSome `inline` text.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    f"```python\n{CODE}\n```\n\nDone."
)
CONVERSATION = [
    ShownMessage(Role.USER, "First question"),
    ShownMessage(Role.ASSISTANT, REPLY, "12:00  ·  1.0 s  ·  40 tokens"),
    ShownMessage(Role.USER, "Second *question*"),
    ShownMessage(Role.ASSISTANT, "Second answer", "12:01  ·  incomplete: the reply was cut off"),
]


def _finished(text: str = "") -> ev.Finished:
    return ev.Finished(5, 10, 100.0, 20.0, ev.StopReason.END_OF_TURN, text=text)


@pytest.fixture
def view(qtbot) -> ChatView:
    chat = ChatView()
    qtbot.addWidget(chat)
    chat.resize(800, 600)
    chat.show()
    return chat


def _shown(widget) -> bool:  # noqa: ANN001
    """Shown as far as the widget itself is concerned (the bubble's own show is queued)."""
    return not widget.isHidden()


def _click(qtbot, button) -> None:  # noqa: ANN001
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_a_reply_shows_every_markdown_element(view: ChatView) -> None:
    view.load_messages(CONVERSATION)
    reply = view.bubbles[1]
    widgets = reply.body.block_widgets
    kinds = [type(w).__name__ for w in widgets]
    assert kinds == ["RichLabel"] * 4 + ["CodeBlockView", "RichLabel"]
    html = reply.body.html()
    assert "<h1" in html and "<code" in html and "<ul" in html and "<table" in html
    (code,) = reply.code_blocks()
    assert code.language == "python" and code.code == CODE
    assert code.language_label.text() == "python"
    assert "color:#" in code.html() and len(code.code_labels) == 1
    assert "<i>question</i>" in view.bubbles[2].body.html()  # the person's Markdown too


def test_code_block_copy_puts_exactly_the_code_on_the_clipboard(view, qtbot) -> None:
    view.load_messages(CONVERSATION)
    code = view.bubbles[1].code_blocks()[0]
    QGuiApplication.clipboard().setText("something else")
    _click(qtbot, code.copy_button)
    assert QGuiApplication.clipboard().text() == CODE
    assert code.copy_button.text() == "Copied"
    qtbot.waitUntil(lambda: code.copy_button.text() == "Copy", timeout=3000)


def test_message_copy_copies_its_markdown(view, qtbot) -> None:
    view.load_messages(CONVERSATION)
    _click(qtbot, view.bubbles[1].copy_button)
    assert QGuiApplication.clipboard().text() == REPLY
    _click(qtbot, view.bubbles[2].copy_button)
    assert QGuiApplication.clipboard().text() == "Second *question*"


def test_regenerate_only_under_the_last_reply_when_idle(view, qtbot) -> None:
    view.load_messages(CONVERSATION)
    first_user, first_reply, user, last = view.bubbles
    assert [_shown(b.regenerate_button) for b in view.bubbles] == [False, False, False, True]
    assert _shown(first_user.edit_button) and _shown(user.edit_button)
    assert not _shown(first_reply.edit_button)
    assert last.regenerate_button.toolTip() and last.copy_button.toolTip()
    with qtbot.waitSignal(view.regenerate_requested, timeout=1000):
        _click(qtbot, last.regenerate_button)

    view.set_busy(True)
    assert not _shown(last.regenerate_button)
    assert not _shown(user.edit_button)
    view.set_busy(False)
    assert _shown(last.regenerate_button)


def test_streaming_hides_actions_until_the_reply_ends(view, qtbot) -> None:
    view.load_messages(CONVERSATION[:2])
    view.add_user_message("more")
    reply = view.begin_reply()
    assert view.busy and view.replying
    assert not any(_shown(b.regenerate_button) for b in view.bubbles)
    assert not any(_shown(b.edit_button) for b in view.bubbles)
    assert not _shown(reply.copy_button)
    view.append_reply("Hello **there**")
    view.finish_reply(_finished())
    assert not view.busy
    assert _shown(reply.regenerate_button) and _shown(reply.copy_button)
    assert "<b>there</b>" in reply.body.html()
    assert "tok/s" in reply.footer


def test_a_failed_reply_offers_regenerate(view) -> None:
    view.add_user_message("hi")
    view.begin_reply()
    view.fail_reply("The model stopped.", "Try again.")
    bubble = view.bubbles[-1]
    assert bubble.objectName() == "errorBubble"
    assert "<b>The model stopped.</b>" in bubble.body.html()
    assert _shown(bubble.regenerate_button)


def test_edit_and_resend_emits_index_and_new_text(view, qtbot) -> None:
    view.load_messages(CONVERSATION)
    user = view.bubbles[2]
    _click(qtbot, user.edit_button)
    assert user.editing
    assert user.edit_panel.editor.toPlainText() == "Second *question*"
    assert not _shown(user.body)
    user.edit_panel.editor.setPlainText("A better question")
    with qtbot.waitSignal(view.edit_requested, timeout=1000) as blocker:
        _click(qtbot, user.edit_panel.save_button)
    assert blocker.args == [2, "A better question"]
    assert not user.editing and _shown(user.body)
    assert user.text == "Second *question*"  # the owner of the chat changes it


def test_edit_cancel_restores_the_message(view, qtbot) -> None:
    view.load_messages(CONVERSATION)
    user = view.bubbles[0]
    edits: list[tuple[int, str]] = []
    view.edit_requested.connect(lambda i, t: edits.append((i, t)))
    _click(qtbot, user.edit_button)
    user.edit_panel.editor.setPlainText("changed")
    _click(qtbot, user.edit_panel.cancel_button)
    assert not user.editing
    assert _shown(user.body) and _shown(user.copy_button)
    assert user.text == "First question"
    assert edits == []


def test_an_empty_edit_cannot_be_sent_and_busy_closes_the_editor(view, qtbot) -> None:
    view.load_messages(CONVERSATION)
    user = view.bubbles[0]
    _click(qtbot, user.edit_button)
    user.edit_panel.editor.setPlainText("   ")
    assert not user.edit_panel.save_button.isEnabled()
    view.set_busy(True)
    assert not user.editing


def test_truncate_removes_from_index_on(view) -> None:
    view.load_messages(CONVERSATION)
    view.truncate(2)
    assert [b.text for b in view.bubbles] == ["First question", REPLY]
    assert _shown(view.bubbles[1].regenerate_button)  # now the last reply
    view.add_user_message("again")
    view.begin_reply()
    view.truncate(3)
    assert not view.replying and len(view.bubbles) == 3
    view.truncate(0)
    assert view.bubbles == [] and view.reply_text() == ""


def test_load_messages_round_trip(view, tmp_path: Path) -> None:
    image = _image(tmp_path / "cat.png", 400, 300)
    items = [*CONVERSATION, ShownMessage(Role.USER, "look", images=(image,))]
    view.load_messages(items)
    shown = [ShownMessage(b.role, b.text, b.footer, b.images) for b in view.bubbles]
    assert shown == items
    view.load_messages(items[:1])  # replaces, not appends
    assert len(view.bubbles) == 1


def _image(path: Path, width: int, height: int) -> str:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor("#3d8ee0"))
    assert image.save(str(path))
    return str(path)


def test_images_show_as_thumbnails_that_open_full_size(view, qtbot, tmp_path: Path) -> None:
    path = _image(tmp_path / "big.png", 640, 320)
    bubble = view.add_user_message("what is this?", [path, str(tmp_path / "gone.png")])
    thumb, missing = bubble.thumbs
    assert thumb.iconSize().width() == THUMB_PX and thumb.iconSize().height() == THUMB_PX // 2
    assert not missing.isEnabled() and "not found" in missing.text()
    _click(qtbot, thumb)
    viewer = thumb.viewer
    assert isinstance(viewer, ImageViewerDialog) and viewer.isVisible()
    assert viewer.image_label.pixmap().width() == 640
    viewer.close()
    assert not any(
        isinstance(w, ImageViewerDialog) and w.isVisible() for w in QApplication.topLevelWidgets()
    )


def test_auto_scroll_sticks_to_the_bottom_and_stops_when_scrolled_up(view, qtbot) -> None:
    view.resize(500, 300)
    view.load_messages(CONVERSATION * 2)
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    reply = view.begin_reply()
    for n in range(8):
        view.append_reply(f"line {n} of the reply\n\n")
        qtbot.wait(40)
    qtbot.waitUntil(lambda: "line 7" in reply.body.html())
    qtbot.waitUntil(lambda: bar.value() == bar.maximum())

    bar.setValue(0)  # the person scrolls up to read: new text must not move the view
    top_max = bar.maximum()
    for n in range(8, 16):
        view.append_reply(f"line {n} of the reply\n\n")
        qtbot.wait(40)
    qtbot.waitUntil(lambda: bar.maximum() > top_max)
    assert bar.value() == 0

    bar.setValue(bar.maximum())  # back at the bottom: it follows again
    view.append_reply("the end\n\n" * 5)
    view.finish_reply(_finished())
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() and bar.maximum() > top_max)
    assert "the end" in reply.body.html()


def test_streaming_many_small_appends_keeps_every_character(view, qtbot) -> None:
    reply = view.begin_reply()
    pieces = []
    for n in range(500):
        piece = f"w{n} "
        if n % 50 == 10:
            piece += "\n\n```python\n"
        elif n % 50 == 30:
            piece += "\n```\n\n"
        pieces.append(piece)
        view.append_reply(piece)
        if n % 25 == 0:
            QApplication.processEvents()
    expected = "".join(pieces)
    assert view.reply_text() == expected
    qtbot.waitUntil(lambda: "w499" in reply.body.html())
    view.finish_reply(_finished())
    assert view.reply_text() == expected
    assert len(reply.code_blocks()) == 10
    assert reply.code_blocks()[0].code.startswith("w11 ")


def test_streaming_re_renders_only_the_last_block(view, qtbot) -> None:
    reply = view.begin_reply()
    view.append_reply("First paragraph.\n\n")
    view.append_reply("Second")
    qtbot.waitUntil(lambda: len(reply.body.block_widgets) == 2)
    first, second = reply.body.block_widgets
    rendered = first.text()
    view.append_reply(" paragraph grows")
    qtbot.waitUntil(lambda: "grows" in reply.body.html())
    assert reply.body.block_widgets[0] is first and first.text() == rendered
    assert reply.body.block_widgets[1] is second
    assert isinstance(first, QLabel) and not isinstance(first, CodeBlockView)


def test_finished_text_replaces_the_streamed_text(view) -> None:
    view.begin_reply()
    view.append_reply("partial")
    view.finish_reply(_finished("the **whole** reply"))
    assert view.reply_text() == "the **whole** reply"
    assert "<b>whole</b>" in view.bubbles[-1].body.html()


def test_short_messages_get_snug_bubbles(view) -> None:
    view.load_messages(CONVERSATION)
    short, long_reply = view.bubbles[0], view.bubbles[1]
    assert short.width() < long_reply.width()
    assert short.body.block_widgets[0].width() < 200


def test_switching_to_a_dark_palette_recolours_code(view, qtbot) -> None:
    view.load_messages(CONVERSATION)
    code = view.bubbles[1].code_blocks()[0]
    light = code.html()
    before = QApplication.palette()
    QApplication.setPalette(dark_palette())  # as when the OS switches to dark
    try:
        qtbot.waitUntil(lambda: code.html() != light)
        assert (
            view.bubbles[1]
            .body.block_widgets[0]
            .palette()
            .color(QPalette.ColorRole.WindowText)
            .lightness()
            > 128
        )
    finally:
        QApplication.setPalette(before)
    qtbot.waitUntil(lambda: code.html() == light)


def test_many_images_wrap_into_rows_inside_the_bubble(view, qtbot, tmp_path: Path) -> None:
    view.resize(560, 600)
    path = _image(tmp_path / "wide.png", 320, 200)
    bubble = view.add_user_message("four of them", [path] * 4)
    qtbot.waitUntil(lambda: all(t.isVisible() for t in bubble.thumbs))
    rows = {t.geometry().top() for t in bubble.thumbs}
    assert len(rows) > 1
    assert all(t.geometry().right() < bubble.width() for t in bubble.thumbs)


def test_editor_keys_escape_cancels_and_ctrl_enter_sends(view, qtbot) -> None:
    view.load_messages(CONVERSATION)
    user = view.bubbles[0]
    _click(qtbot, user.edit_button)
    editor = user.edit_panel.editor
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert not user.editing
    _click(qtbot, user.edit_button)
    qtbot.keyClicks(editor, " again")
    with qtbot.waitSignal(view.edit_requested, timeout=1000) as blocker:
        qtbot.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == [0, "First question again"]


def test_a_persons_line_breaks_are_kept_and_a_replys_paragraph_joins(qtbot) -> None:
    from PySide6.QtGui import QTextDocument

    from app.core.chat.messages import Role
    from app.ui.chat.message_bubble import MessageBubble

    def lines(bubble: MessageBubble) -> list[str]:
        doc = QTextDocument()
        doc.setHtml(bubble.body.html())
        return doc.toPlainText().replace("\u2028", "\n").splitlines()

    typed = "first line\nsecond line"
    mine = MessageBubble(Role.USER, typed)
    reply = MessageBubble(Role.ASSISTANT, typed)
    qtbot.addWidget(mine)
    qtbot.addWidget(reply)
    assert lines(mine) == ["first line", "second line"]
    assert lines(reply) == ["first line second line"]


def test_removed_messages_vanish_at_once(qtbot) -> None:  # noqa: ANN001
    """A new chat never shows the old transcript over its welcome, even for one paint."""
    view = ChatView()
    qtbot.addWidget(view)
    view.show()
    view.load_messages([ShownMessage(Role.USER, "old question"), ShownMessage(Role.ASSISTANT, "x")])
    rows = [b.parentWidget() for b in view.bubbles]
    view.clear()
    assert rows and all(row is not None and row.isHidden() for row in rows)
