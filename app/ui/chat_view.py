"""ChatView: the conversation as a scrolling column of message bubbles.

The person's messages sit on the right in a tinted bubble (plain text, exactly as typed);
the model's replies sit on the left, rendered with Qt's own Markdown. Colours are mixed
from the current palette, so light and dark themes both look right and follow the OS.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QPalette, QTextDocument
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.core import events as ev
from app.core.chat.messages import Role

USER_WIDTH = 0.72  # of the view's width
ASSISTANT_WIDTH = 0.86
STICK_SLACK_PX = 24  # "at the bottom" when this close to it
TYPING = "…"

_STOP_NOTES = {
    ev.StopReason.MAX_TOKENS: "reached the length limit",
    ev.StopReason.CONTEXT_FULL: "context is full",
    ev.StopReason.USER: "stopped",
}


def _mix(a: QColor, b: QColor, t: float) -> str:
    """``t`` of ``a`` over ``b``, as a stylesheet colour."""
    r = round(a.red() * t + b.red() * (1 - t))
    g = round(a.green() * t + b.green() * (1 - t))
    bl = round(a.blue() * t + b.blue() * (1 - t))
    return f"rgb({r}, {g}, {bl})"


class MessageBubble(QFrame):
    """One message: its text and, under a finished reply, a small footer."""

    def __init__(self, role: Role, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._role = role
        self._text = text
        self._max_width = 0
        self._body_width = 0
        self.setObjectName("userBubble" if role is Role.USER else "assistantBubble")
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Minimum)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(4)
        self._body = QLabel(self)
        self._body.setObjectName("bubbleBody")
        self._body.setWordWrap(True)
        self._body.setTextFormat(
            Qt.TextFormat.PlainText if role is Role.USER else Qt.TextFormat.MarkdownText
        )
        self._body.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self._body.setOpenExternalLinks(True)
        self._body.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        layout.addWidget(self._body)
        self._footer = QLabel(self)
        self._footer.setObjectName("bubbleFooter")
        self._footer.hide()
        layout.addWidget(self._footer)
        self._render()

    @property
    def role(self) -> Role:
        """Who wrote the message."""
        return self._role

    @property
    def text(self) -> str:
        """The message text (Markdown source for replies)."""
        return self._text

    @property
    def footer(self) -> str:
        """The footer line ("" when there is none)."""
        return self._footer.text() if not self._footer.isHidden() else ""

    def append_text(self, text: str) -> None:
        """Add streamed text to the end."""
        self._text += text
        self._render()

    def set_text(self, text: str) -> None:
        """Replace the text."""
        self._text = text
        self._render()

    def set_footer(self, text: str) -> None:
        """Show a small line under the message."""
        self._footer.setText(text)
        self._footer.setVisible(bool(text))

    def set_error(self, message: str, hint: str = "") -> None:
        """Turn this reply into an error note (keeping any text that came before)."""
        self.setObjectName("errorBubble")
        note = f"**{message}**" + (f"\n\n{hint}" if hint else "")
        self._text = f"{self._text}\n\n{note}" if self._text.strip() else note
        self._render()
        self.style().unpolish(self)
        self.style().polish(self)

    def fit(self, max_width: int) -> None:
        """Be at most ``max_width`` wide, and no wider than the text needs."""
        self._max_width = max_width
        self.setMaximumWidth(max_width)
        self._body_width = 0
        self._measure()

    def _render(self) -> None:
        self._body.setText(self._text or TYPING)
        self._measure()

    def _measure(self) -> None:
        """Size the text to its widest line, so short messages get snug bubbles.

        QLabel's own guess for wrapped text is a narrow column; this lays the text out the
        way the label will and uses the width it really takes.
        """
        if not self._max_width:
            return
        margins = self.layout().contentsMargins()
        room = max(80, self._max_width - margins.left() - margins.right())
        if self._body_width >= room:
            return  # streamed text only grows; it already takes the whole width
        doc = QTextDocument()
        doc.setDefaultFont(self._body.font())
        doc.setDocumentMargin(0)
        if self._body.textFormat() is Qt.TextFormat.PlainText:
            doc.setPlainText(self._text or TYPING)
        else:
            doc.setMarkdown(self._text or TYPING)
        doc.setTextWidth(room)
        self._body_width = min(room, math.ceil(doc.idealWidth()) + 2)
        self._body.setFixedWidth(self._body_width)


class ChatView(QScrollArea):
    """The conversation; new reply text is appended to the last bubble."""

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
        self._stick = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrollbar_value_changed)
        bar.rangeChanged.connect(self._on_scrollbar_range_changed)
        self.set_empty_hint("")
        self._restyle()

    # -- content ---------------------------------------------------------------------
    @property
    def bubbles(self) -> list[MessageBubble]:
        """Every message bubble, oldest first."""
        return list(self._bubbles)

    @property
    def replying(self) -> bool:
        """Whether a reply is being streamed into the last bubble."""
        return self._reply is not None

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

    def add_user_message(self, text: str) -> MessageBubble:
        """Show a message the person sent."""
        return self._add(MessageBubble(Role.USER, text))

    def begin_reply(self) -> MessageBubble:
        """Start an empty reply bubble that streamed text goes into."""
        self._stick = True  # sending a message always follows the reply
        self._reply = self._add(MessageBubble(Role.ASSISTANT))
        self._reply_started = time.monotonic()
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
        self._reply = None

    def fail_reply(self, message: str, hint: str = "") -> None:
        """End the reply with an error note."""
        bubble = self._reply or self.begin_reply()
        bubble.set_error(message, hint)
        self._reply = None

    def interrupt_reply(self, note: str) -> None:
        """End the reply where it stopped (the engine died); its text stays."""
        if self._reply is None:
            return
        if not self._reply.text:
            self._reply.set_text("*(no reply)*")
        self._reply.set_footer(f"{datetime.now().strftime('%H:%M')}  ·  {note}")
        self._reply = None

    def clear(self) -> None:
        """Remove every message."""
        for bubble in self._bubbles:
            row = bubble.parentWidget()
            self._column.removeWidget(row)
            row.deleteLater()
        self._bubbles.clear()
        self._reply = None
        self._empty.show()
        self._column.setStretch(0, 1)  # the welcome text sits in the middle

    def _add(self, bubble: MessageBubble) -> MessageBubble:
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
        self._bubbles.append(bubble)
        self._fit(bubble)
        return bubble

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
        self.setStyleSheet(
            f"#userBubble {{ background: {user}; border-radius: 14px; }}"
            f"#assistantBubble {{ background: {assistant}; border-radius: 14px; }}"
            f"#errorBubble {{ background: {error}; border-radius: 14px; }}"
            f"#bubbleFooter {{ color: {muted}; font-size: 8.5pt; }}"
            f"#emptyState {{ color: {muted}; }}"
        )

    def _on_scrollbar_value_changed(self, value: int) -> None:
        self._stick = value >= self.verticalScrollBar().maximum() - STICK_SLACK_PX

    def _on_scrollbar_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._stick:
            self.verticalScrollBar().setValue(maximum)
