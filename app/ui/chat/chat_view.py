"""ChatView: the conversation as a scrolling column of message bubbles.

The person's messages sit on the right in a tinted bubble, the model's replies on the left;
both are Markdown (``app.ui.chat.markdown``), code blocks highlighted, each with a Copy button.
Under each message are small actions: Copy; Edit (the person's messages: the bubble turns
into an editor, and Save & send emits ``edit_requested``); Regenerate and Continue (the last
reply).
The view only asks: whoever owns the conversation changes it and calls :meth:`truncate`
or :meth:`load_messages`. Colours are mixed from the palette, so light and dark both work.
Each message is a :class:`~app.ui.chat.message_bubble.MessageBubble`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from PySide6.QtCore import QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPalette, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.core import events as ev
from app.core.chat.messages import Role
from app.ui.chat.empty_state import Action, EmptyState
from app.ui.chat.markdown import MarkdownTheme, warm_up
from app.ui.chat.message_bubble import MessageBubble
from app.ui.chat.message_widgets import code_font
from app.ui.chat.shown_message import ShownMessage, reply_notes

__all__ = ["ChatView", "MessageBubble", "ShownMessage"]  # MessageBubble: from message_bubble

USER_WIDTH = 0.72  # of the view's width
ASSISTANT_WIDTH = 0.86
STICK_SLACK_PX = 24  # "at the bottom" when this close to it


def _mix(a: QColor, b: QColor, t: float) -> str:
    """``t`` of ``a`` over ``b``, as a ``#rrggbb`` colour."""
    r = round(a.red() * t + b.red() * (1 - t))
    g = round(a.green() * t + b.green() * (1 - t))
    bl = round(a.blue() * t + b.blue() * (1 - t))
    return QColor(r, g, bl).name()


class ChatView(QScrollArea):
    """The conversation; new reply text is appended to the last bubble.

    Signals:
        regenerate_requested: Regenerate was clicked under the last reply.
        continue_requested: Continue was clicked under the last reply.
        edit_requested(int, str): Save & send on an edited message: its index in
            :attr:`bubbles` and the new text. The view changes nothing itself.
    """

    regenerate_requested = Signal()
    continue_requested = Signal()
    edit_requested = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._styled_pt = 0.0  # the font size the sheet and Markdown theme were made for
        self.setObjectName("chatView")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._container = QWidget(self)
        self._container.setObjectName("chatContainer")
        self._container.setBackgroundRole(QPalette.ColorRole.Base)
        self._container.setAutoFillBackground(True)
        # The column's height is its height for the view's width. A wrapped label's minimum
        # size is its height at some narrow width, and the scroll area would otherwise keep
        # the column at least that tall: a chat laid out before the window was shown (a
        # restored one) then sat far above an empty band the view had scrolled to.
        self._container.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        self._column = QVBoxLayout(self._container)
        self._column.setContentsMargins(20, 20, 20, 20)
        self._column.setSpacing(14)
        self._empty = EmptyState(self._container)
        self._column.addStretch(1)
        self._column.addWidget(self._empty)
        self._column.addStretch(1)
        self.setWidget(self._container)
        self._bubbles: list[MessageBubble] = []
        self._reply: MessageBubble | None = None
        self._reply_started = 0.0
        self._busy = False
        self._can_reply = True  # a model is loaded (the window says when not)
        self._continue = (False, "")  # the last reply can be continued; why the format cannot
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

    def set_empty_hint(self, hint: str, actions: Sequence[Action] = ()) -> None:
        """What the empty conversation says under the welcome line, with action buttons."""
        self._empty.set_hint(hint, actions)

    @property
    def empty_state(self) -> EmptyState:
        """The empty conversation's welcome, hint and buttons."""
        return self._empty

    def set_can_reply(self, can_reply: bool) -> None:
        """Whether a model is loaded: Regenerate is offered only when one could answer."""
        self._can_reply = can_reply
        self._update_actions()

    def set_continue(self, offered: bool, why_not: str = "") -> None:
        """Offer Continue under the last reply (``why_not``: shown disabled, saying why)."""
        self._continue = (offered, why_not)
        self._update_actions()

    def set_busy(self, busy: bool) -> None:
        """Hold back Edit, Regenerate and Continue (and close open editors) while ``busy``."""
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

    def continue_reply(self, text: str) -> MessageBubble:
        """Stream more text into the last reply, whose saved text is ``text`` (Continue)."""
        last = self._bubbles[-1] if self._bubbles else None
        if last is None or last.role is not Role.ASSISTANT:
            return self.begin_reply()
        self._stick = True
        last.reopen(text)
        self._reply = last
        self._reply_started = time.monotonic()
        self._update_actions()
        return last

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
        parts = [datetime.now().strftime("%H:%M"), f"{seconds:.1f} s"]
        parts += reply_notes(
            finished.generated_tokens,
            finished.decode_tok_s,
            finished.time_to_first_token_s,
            finished.stop_reason.value,
        )
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
            assert row is not None  # _add put every bubble in a row of its own
            self._column.removeWidget(row)
            row.hide()  # gone at once: deleteLater waits for the event loop, a paint may not
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
        bubble.continue_requested.connect(self.continue_requested)
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
            regenerate = (
                self._can_reply and not busy and bubble is last and bubble.role is Role.ASSISTANT
            )
            offered, why_not = self._continue
            bubble.set_actions(
                edit=not busy, regenerate=regenerate, continue_=regenerate and offered,
                why_not=why_not,
            )  # fmt: skip

    def _on_bubble_edit_requested(self, bubble: MessageBubble, text: str) -> None:
        if bubble in self._bubbles and not self.busy:
            self.edit_requested.emit(self._bubbles.index(bubble), text)

    # -- looks and scrolling ---------------------------------------------------------
    def _fit(self, bubble: MessageBubble) -> None:
        margins = self._column.contentsMargins()
        width = self.viewport().width() - margins.left() - margins.right()
        share = USER_WIDTH if bubble.role is Role.USER else ASSISTANT_WIDTH
        bubble.fit(max(200, int(width * share)))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        """Keep bubbles a share of the view's width."""
        super().resizeEvent(event)
        for bubble in self._bubbles:
            self._fit(bubble)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        """Recolour when the palette changes (the OS switched light/dark)."""
        super().changeEvent(event)
        kind = event.type()
        if kind == QEvent.Type.PaletteChange or (
            kind == QEvent.Type.FontChange
            and getattr(self, "_styled_pt", None) != self.font().pointSizeF()
        ):
            self._restyle()  # colours, and the Markdown sizes that follow the font

    def _restyle(self) -> None:
        self._styled_pt = self.font().pointSizeF()
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
