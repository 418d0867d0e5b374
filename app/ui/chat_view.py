"""ChatView: the conversation as a scrolling column of message bubbles.

The person's messages sit on the right in a tinted bubble, the model's replies on the left;
both are Markdown (``app.ui.markdown``), code blocks highlighted, each with a Copy button.
Under each message are small actions: Copy; Edit (the person's messages: the bubble turns
into an editor, and Save & send emits ``edit_requested``); Regenerate (the last reply).
The view only asks: whoever owns the conversation changes it and calls :meth:`truncate`
or :meth:`load_messages`. Colours are mixed from the palette, so light and dark both work.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core import events as ev
from app.core.chat.messages import Role
from app.ui.markdown import MarkdownTheme, warm_up
from app.ui.message_widgets import (
    CodeBlockView,
    EditPanel,
    ImageThumb,
    MarkdownBody,
    action_button,
    code_font,
    copy_to_clipboard,
)

USER_WIDTH = 0.72  # of the view's width
ASSISTANT_WIDTH = 0.86
STICK_SLACK_PX = 24  # "at the bottom" when this close to it
TYPING = "…"
FOOTER_SAMPLE = "00:00  ·  00.0 s  ·  000 tokens  ·  00.0 tok/s"  # a typical footer
RENDER_GAP_MS = 30  # a streaming reply re-renders at most this often ...
RENDER_LOAD = 0.35  # ... and spends at most about this share of the time rendering

_STOP_NOTES = {
    ev.StopReason.MAX_TOKENS: "reached the length limit",
    ev.StopReason.CONTEXT_FULL: "context is full",
    ev.StopReason.USER: "stopped",
}


@dataclass(frozen=True, slots=True)
class ShownMessage:
    """A stored message as the transcript shows it (:meth:`ChatView.load_messages`).

    Attributes:
        role: Who wrote it.
        text: Its Markdown.
        footer: The small line under it: time, speed, and a note such as "incomplete".
        images: Image files shown as thumbnails above the text.
    """

    role: Role
    text: str
    footer: str = ""
    images: tuple[str, ...] = ()


def _mix(a: QColor, b: QColor, t: float) -> str:
    """``t`` of ``a`` over ``b``, as a ``#rrggbb`` colour."""
    r = round(a.red() * t + b.red() * (1 - t))
    g = round(a.green() * t + b.green() * (1 - t))
    bl = round(a.blue() * t + b.blue() * (1 - t))
    return QColor(r, g, bl).name()


class MessageBubble(QFrame):
    """One message: thumbnails, Markdown, and a footer row with a note and actions."""

    edit_requested = Signal(str)
    regenerate_requested = Signal()

    def __init__(
        self,
        role: Role,
        text: str = "",
        parent: QWidget | None = None,
        *,
        images: Sequence[str] = (),
        theme: MarkdownTheme | None = None,
    ) -> None:
        super().__init__(parent)
        self._role = role
        self._text = text
        self._images = tuple(images)
        self._max_width = 0
        self._streaming = False
        self._footer_reserve = 0
        self._last_render = 0.0
        self._render_cost = 0.0
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.timeout.connect(self._on_render_timer_timeout)
        self.setObjectName("userBubble" if role is Role.USER else "assistantBubble")
        column = QVBoxLayout(self)
        column.setContentsMargins(14, 10, 14, 6)
        column.setSpacing(6)
        self.thumbs = [ImageThumb(path, self) for path in self._images]
        self._thumb_grid = QGridLayout()
        self._thumb_grid.setSpacing(6)
        self._thumb_grid.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self._thumb_columns = 0
        column.addLayout(self._thumb_grid)
        self.body = MarkdownBody(self)
        if theme is not None:
            self.body.set_theme(theme)
        column.addWidget(self.body)
        self.edit_panel = EditPanel(self)
        self.edit_panel.hide()
        self.edit_panel.save_requested.connect(self._on_edit_panel_save_requested)
        self.edit_panel.cancel_requested.connect(self.cancel_edit)
        column.addWidget(self.edit_panel)
        self._footer_row = QWidget(self)
        actions = QHBoxLayout(self._footer_row)
        actions.setContentsMargins(0, 0, 0, 0)
        actions.setSpacing(2)
        self._footer = QLabel(self._footer_row)
        self._footer.setObjectName("bubbleFooter")
        self._footer.hide()
        self.edit_button = action_button("Edit", "Edit this message and send it again", self)
        self.regenerate_button = action_button("Regenerate", "Write this reply again", self)
        self.copy_button = action_button("Copy", "Copy this message", self)
        self.edit_button.clicked.connect(self.start_edit)
        self.regenerate_button.clicked.connect(self.regenerate_requested)
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        actions.addWidget(self._footer)
        actions.addStretch(1)
        for button in (self.edit_button, self.regenerate_button, self.copy_button):
            actions.addWidget(button)
        column.addWidget(self._footer_row)
        self.set_actions(edit=False, regenerate=False)
        self._render()

    @property
    def role(self) -> Role:
        """Who wrote the message."""
        return self._role

    @property
    def text(self) -> str:
        """The message's Markdown source (all of it, even before a render catches up)."""
        return self._text

    @property
    def images(self) -> tuple[str, ...]:
        """The image files shown above the text."""
        return self._images

    @property
    def footer(self) -> str:
        """The footer line ("" when there is none)."""
        return self._footer.text() if not self._footer.isHidden() else ""

    @property
    def editing(self) -> bool:
        """Whether the bubble is an editor now."""
        return not self.edit_panel.isHidden()

    def append_text(self, text: str) -> None:
        """Add streamed text to the end (shown at the next render, within ~30 ms)."""
        self._text += text
        if self._render_timer.isActive():
            return
        due = self._last_render + max(RENDER_GAP_MS / 1000, self._render_cost / RENDER_LOAD)
        wait_ms = (due - time.perf_counter()) * 1000
        if wait_ms <= 0:
            self._render()
        else:
            self._render_timer.start(int(wait_ms) + 1)

    def set_text(self, text: str) -> None:
        """Replace the text."""
        self._text = text
        self._render()

    def set_streaming(self, streaming: bool) -> None:
        """While streaming, Copy is hidden; at the end the last text is rendered at once."""
        self._streaming = streaming
        self.copy_button.setVisible(not streaming)
        if streaming:
            # make room now for the footer that comes at the end: were the bubble to widen
            # then, every block would be laid out again
            note = self._footer.fontMetrics().horizontalAdvance(FOOTER_SAMPLE)
            self._footer_reserve = note + 2 * self.regenerate_button.sizeHint().width() + 16
        if not streaming and self._render_timer.isActive():
            self._render()  # the text that was waiting for its turn

    def set_footer(self, text: str) -> None:
        """Show a small line under the message."""
        self._footer.setText(text)
        self._footer.setVisible(bool(text))

    def set_actions(self, *, edit: bool, regenerate: bool) -> None:
        """Offer Edit and/or Regenerate (Copy is always there once a reply is written)."""
        self.edit_button.setVisible(edit and self._role is Role.USER)
        self.regenerate_button.setVisible(regenerate)

    def set_error(self, message: str, hint: str = "") -> None:
        """Turn this reply into an error note (keeping any text that came before)."""
        self.setObjectName("errorBubble")
        note = f"**{message}**" + (f"\n\n{hint}" if hint else "")
        self._text = f"{self._text}\n\n{note}" if self._text.strip() else note
        self._streaming = False
        self._render()
        self.style().unpolish(self)
        self.style().polish(self)

    def set_theme(self, theme: MarkdownTheme) -> None:
        """Render again with new colours."""
        self.body.set_theme(theme)
        self._render()

    def fit(self, max_width: int) -> None:
        """Be at most ``max_width`` wide, and no wider than the text needs."""
        self._max_width = max_width
        self.setMaximumWidth(max_width)
        self._update_width()

    def code_blocks(self) -> list[CodeBlockView]:
        """The message's fenced code blocks, in order."""
        return self.body.code_blocks()

    @Slot()
    def start_edit(self) -> None:
        """Turn into an editor holding the text."""
        self.edit_panel.start(self._text)
        self.body.hide()
        self._footer_row.hide()
        self.edit_panel.show()
        self._update_width()
        self.edit_panel.editor.setFocus()

    @Slot()
    def cancel_edit(self) -> None:
        """Show the message again, unchanged."""
        self.edit_panel.hide()
        self.body.show()
        self._footer_row.show()

    def _render(self) -> None:
        self._render_timer.stop()
        started = time.perf_counter()
        self.body.render(self._text or TYPING)
        self._update_width()
        self._last_render = time.perf_counter()
        self._render_cost = self._last_render - started

    def _update_width(self) -> None:
        """Size the blocks to the widest line, so short messages get snug bubbles."""
        if not self._max_width:
            return
        margins = self.layout().contentsMargins()
        room = max(80, self._max_width - margins.left() - margins.right())
        width = max(self.body.natural_width(room), self._footer_width())
        if self.thumbs:
            width = max(width, self._arrange_thumbs(room))
        self.body.set_width(min(room, max(width, 8)))
        if self.editing:
            self.edit_panel.setFixedWidth(room)

    def _arrange_thumbs(self, room: int) -> int:
        """Lay the thumbnails out in as many columns as fit; returns the width they take."""
        cell = max(t.sizeHint().width() for t in self.thumbs) + self._thumb_grid.spacing()
        columns = max(1, min(len(self.thumbs), room // cell))
        if columns != self._thumb_columns:
            self._thumb_columns = columns
            for n, thumb in enumerate(self.thumbs):
                self._thumb_grid.addWidget(thumb, n // columns, n % columns)
        return min(room, columns * cell)

    def _footer_width(self) -> int:
        """Room for the footer row (and, for a streamed reply, for its coming footer)."""
        return max(self._footer_row.sizeHint().width(), self._footer_reserve)

    @Slot()
    def _on_render_timer_timeout(self) -> None:
        self._render()

    @Slot()
    def _on_copy_button_clicked(self) -> None:
        copy_to_clipboard(self._text, self.copy_button)

    @Slot(str)
    def _on_edit_panel_save_requested(self, text: str) -> None:
        self.cancel_edit()
        self.edit_requested.emit(text)


class ChatView(QScrollArea):
    """The conversation; new reply text is appended to the last bubble.

    Signals:
        regenerate_requested: Regenerate was clicked under the last reply.
        edit_requested(int, str): Save & send on an edited message: its index in
            :attr:`bubbles` and the new text. The view changes nothing itself.
    """

    regenerate_requested = Signal()
    edit_requested = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatView")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._container = QWidget(self)
        self._container.setObjectName("chatContainer")
        self._container.setBackgroundRole(QPalette.ColorRole.Base)
        self._container.setAutoFillBackground(True)
        self._column = QVBoxLayout(self._container)
        self._column.setContentsMargins(20, 20, 20, 20)
        self._column.setSpacing(14)
        self._empty = QLabel(self._container)
        self._empty.setObjectName("emptyState")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setWordWrap(True)
        self._empty.setTextFormat(Qt.TextFormat.RichText)
        self._column.addStretch(1)
        self._column.addWidget(self._empty)
        self._column.addStretch(1)
        self.setWidget(self._container)
        self._bubbles: list[MessageBubble] = []
        self._reply: MessageBubble | None = None
        self._reply_started = 0.0
        self._busy = False
        self._stick = True
        self._theme = MarkdownTheme()
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrollbar_value_changed)
        bar.rangeChanged.connect(self._on_scrollbar_range_changed)
        self.set_empty_hint("")
        self._restyle()
        QTimer.singleShot(0, warm_up)  # Pygments' first lookup takes ~80 ms

    # -- content ---------------------------------------------------------------------
    @property
    def bubbles(self) -> list[MessageBubble]:
        """Every message bubble, oldest first."""
        return list(self._bubbles)

    @property
    def replying(self) -> bool:
        """Whether a reply is being streamed into the last bubble."""
        return self._reply is not None

    @property
    def busy(self) -> bool:
        """Whether Edit and Regenerate are held back (a reply is being written)."""
        return self._busy or self._reply is not None

    def reply_text(self) -> str:
        """Text of the last reply (streaming or finished); "" when there is none."""
        for bubble in reversed(self._bubbles):
            if bubble.role is Role.ASSISTANT:
                return bubble.text
        return ""

    def set_empty_hint(self, hint: str) -> None:
        """What the empty conversation says under the welcome line."""
        hint_html = f"<p style='margin-top:6px'>{hint}</p>" if hint else ""
        self._empty.setText(
            "<p style='font-size:17pt; font-weight:600'>Herd</p>"
            "<p>Private chat with Llama 4, right on this computer.<br>"
            "Nothing you type leaves it.</p>" + hint_html
        )

    def set_busy(self, busy: bool) -> None:
        """Hold back Edit and Regenerate (and close open editors) while ``busy``."""
        self._busy = busy
        self._update_actions()

    def add_user_message(self, text: str, images: Sequence[str] = ()) -> MessageBubble:
        """Show a message the person sent, with its image files as thumbnails."""
        return self._add(MessageBubble(Role.USER, text, images=images, theme=self._theme))

    def begin_reply(self) -> MessageBubble:
        """Start an empty reply bubble that streamed text goes into."""
        self._stick = True  # sending a message always follows the reply
        bubble = MessageBubble(Role.ASSISTANT, theme=self._theme)
        bubble.set_streaming(True)
        self._reply = self._add(bubble)
        self._reply_started = time.monotonic()
        self._update_actions()
        return self._reply

    def append_reply(self, text: str) -> None:
        """Append streamed text to the reply being written."""
        if self._reply is None:
            self.begin_reply()
        assert self._reply is not None
        self._reply.append_text(text)

    def finish_reply(self, finished: ev.Finished) -> None:
        """End the reply: the final text and a footer with time and speed."""
        bubble = self._reply or self.begin_reply()
        bubble.set_streaming(False)
        if finished.text and finished.text != bubble.text:
            bubble.set_text(finished.text)
        seconds = time.monotonic() - self._reply_started
        parts = [
            datetime.now().strftime("%H:%M"),
            f"{seconds:.1f} s",
            f"{finished.generated_tokens} tokens",
            f"{finished.decode_tok_s:.1f} tok/s",
        ]
        note = _STOP_NOTES.get(finished.stop_reason)
        if note:
            parts.append(note)
        bubble.set_footer("  ·  ".join(parts))
        self._end_reply()

    def fail_reply(self, message: str, hint: str = "") -> None:
        """End the reply with an error note."""
        bubble = self._reply or self.begin_reply()
        bubble.set_streaming(False)
        bubble.set_error(message, hint)
        self._end_reply()

    def interrupt_reply(self, note: str) -> None:
        """End the reply where it stopped (the engine died); its text stays."""
        if self._reply is None:
            return
        self._reply.set_streaming(False)
        if not self._reply.text:
            self._reply.set_text("*(no reply)*")
        self._reply.set_footer(f"{datetime.now().strftime('%H:%M')}  ·  {note}")
        self._end_reply()

    def load_messages(self, items: Iterable[ShownMessage]) -> None:
        """Show a stored conversation instead of the current one (scrolled to its end)."""
        self.clear()
        for item in items:
            bubble = MessageBubble(item.role, item.text, images=item.images, theme=self._theme)
            bubble.set_footer(item.footer)
            self._add(bubble, update=False)
        self._stick = True
        self._update_actions()

    def truncate(self, index: int) -> None:
        """Remove the message at ``index`` and every later one (a streaming reply too)."""
        for bubble in self._bubbles[index:]:
            if bubble is self._reply:
                self._reply = None
            row = bubble.parentWidget()
            self._column.removeWidget(row)
            row.deleteLater()
        del self._bubbles[index:]
        if not self._bubbles:
            self._empty.show()
            self._column.setStretch(0, 1)  # the welcome text sits in the middle
        self._update_actions()

    def clear(self) -> None:
        """Remove every message."""
        self.truncate(0)

    def _end_reply(self) -> None:
        self._reply = None
        self._update_actions()

    def _add(self, bubble: MessageBubble, *, update: bool = True) -> MessageBubble:
        self._empty.hide()
        self._column.setStretch(0, 0)  # messages stack from the top
        row = QWidget(self._container)
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        if bubble.role is Role.USER:
            line.addStretch(1)
        line.addWidget(bubble)
        if bubble.role is not Role.USER:
            line.addStretch(1)
        self._column.insertWidget(self._column.count() - 1, row)
        bubble.edit_requested.connect(functools.partial(self._on_bubble_edit_requested, bubble))
        bubble.regenerate_requested.connect(self.regenerate_requested)
        self._bubbles.append(bubble)
        self._fit(bubble)
        if update:
            self._update_actions()
        return bubble

    def _update_actions(self) -> None:
        busy = self.busy
        last = self._bubbles[-1] if self._bubbles else None
        for bubble in self._bubbles:
            if busy and bubble.editing:
                bubble.cancel_edit()
            regenerate = not busy and bubble is last and bubble.role is Role.ASSISTANT
            bubble.set_actions(edit=not busy, regenerate=regenerate)

    def _on_bubble_edit_requested(self, bubble: MessageBubble, text: str) -> None:
        if bubble in self._bubbles and not self.busy:
            self.edit_requested.emit(self._bubbles.index(bubble), text)

    # -- looks and scrolling ---------------------------------------------------------
    def _fit(self, bubble: MessageBubble) -> None:
        margins = self._column.contentsMargins()
        width = self.viewport().width() - margins.left() - margins.right()
        share = USER_WIDTH if bubble.role is Role.USER else ASSISTANT_WIDTH
        bubble.fit(max(200, int(width * share)))

    def resizeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        """Keep bubbles a share of the view's width."""
        super().resizeEvent(event)
        for bubble in self._bubbles:
            self._fit(bubble)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        """Recolour when the palette changes (the OS switched light/dark)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._restyle()

    def _restyle(self) -> None:
        pal = self.palette()
        base = pal.color(QPalette.ColorRole.Base)
        text = pal.color(QPalette.ColorRole.Text)
        accent = pal.color(QPalette.ColorRole.Highlight)
        dark = base.lightness() < 128
        user = _mix(accent, base, 0.30 if dark else 0.16)
        assistant = _mix(text, base, 0.08 if dark else 0.045)
        error = _mix(QColor(220, 53, 69), base, 0.22 if dark else 0.12)
        muted = _mix(text, base, 0.55)
        border = _mix(text, base, 0.28 if dark else 0.22)
        shade = "rgba(255, 255, 255, 0.07)" if dark else "rgba(0, 0, 0, 0.06)"
        hover = "rgba(255, 255, 255, 0.12)" if dark else "rgba(0, 0, 0, 0.08)"
        self._theme = MarkdownTheme(
            link=pal.color(QPalette.ColorRole.Link).name(),
            muted=muted,
            code_background=shade,
            border=border,
            header_background=_mix(text, base, 0.14 if dark else 0.08),
            code_font=code_font().family(),
            base_pt=self.font().pointSizeF(),
            dark=dark,
        )
        self.setStyleSheet(
            f"#userBubble {{ background: {user}; border-radius: 14px; }}"
            f"#assistantBubble {{ background: {assistant}; border-radius: 14px; }}"
            f"#errorBubble {{ background: {error}; border-radius: 14px; }}"
            f"#bubbleFooter {{ color: {muted}; font-size: 8.5pt; }}"
            f"#emptyState {{ color: {muted}; }}"
            f"#codeBlock {{ background: {shade}; border: 1px solid {border};"
            " border-radius: 8px; }"
            f"#codeLanguage {{ color: {muted}; font-size: 8.5pt; }}"
            f"QToolButton#bubbleAction {{ color: {muted}; border: none; padding: 1px 6px;"
            " border-radius: 4px; font-size: 8.5pt; }"
            f"QToolButton#bubbleAction:hover {{ color: {text.name()}; background: {hover}; }}"
            f"QToolButton#imageThumb {{ border: 1px solid {border}; border-radius: 6px;"
            " padding: 2px; }"
        )
        for bubble in self._bubbles:
            bubble.set_theme(self._theme)

    @Slot(int)
    def _on_scrollbar_value_changed(self, value: int) -> None:
        self._stick = value >= self.verticalScrollBar().maximum() - STICK_SLACK_PX

    @Slot(int, int)
    def _on_scrollbar_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._stick:
            self.verticalScrollBar().setValue(maximum)
