"""MessageBubble: one message of the transcript, as the ChatView (chat_view) shows it.

Thumbnails, the Markdown body (re-rendered as each batch of a streaming reply arrives,
unless rendering gets so costly that it would take more than ``RENDER_LOAD`` of the time),
and a footer row with a note and the Copy, Edit, Regenerate and Continue actions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.core.chat.messages import Role
from app.ui.chat.markdown import MarkdownTheme
from app.ui.chat.message_widgets import (
    CodeBlockView,
    EditPanel,
    MarkdownBody,
    action_button,
    copy_to_clipboard,
)
from app.ui.images.image_viewer import ImageThumb

TYPING = "…"
FOOTER_SEPARATOR = "  ·  "
NO_BREAK = "\u00a0"
CONTINUE_TIP = "Write more of this reply, from where it stopped"
FOOTER_SAMPLE = "00:00  ·  00.0 s  ·  000 tokens  ·  00.0 tok/s"  # a typical footer
# Not a throttle (the engine batches tokens, ~30 a second): a guard for a long reply whose
# re-render grows costly, so the window never spends more than this share of its time on it.
RENDER_LOAD = 0.35


class MessageBubble(QFrame):
    """One message: thumbnails, Markdown, and a footer row with a note and actions."""

    edit_requested = Signal(str)
    regenerate_requested = Signal()
    continue_requested = Signal()

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
        self._footer_text = ""
        self._last_render = 0.0
        self._render_cost = 0.0
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.timeout.connect(self._on_render_timer_timeout)
        self.setObjectName("userBubble" if role is Role.USER else "assistantBubble")
        column = self._column = QVBoxLayout(self)
        column.setContentsMargins(14, 10, 14, 6)
        column.setSpacing(6)
        self.thumbs = [ImageThumb(path, self) for path in self._images]
        self._thumb_grid = QGridLayout()
        self._thumb_grid.setSpacing(6)
        self._thumb_grid.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self._thumb_columns = 0
        column.addLayout(self._thumb_grid)
        self.body = MarkdownBody(self, hard_breaks=role is Role.USER)
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
        self._footer.setWordWrap(True)  # a narrow bubble wraps its notes above the actions
        self._footer.hide()
        self.edit_button = action_button("Edit", "Edit this message and send it again", self)
        self.regenerate_button = action_button("Regenerate", "Write this reply again", self)
        self.continue_button = action_button("Continue", CONTINUE_TIP, self)
        self.copy_button = action_button("Copy", "Copy this message", self)
        self.edit_button.clicked.connect(self.start_edit)
        self.regenerate_button.clicked.connect(self.regenerate_requested)
        self.continue_button.clicked.connect(self.continue_requested)
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        actions.addWidget(self._footer, 1)  # the note takes the room, and wraps if short of it
        actions.addStretch(0)  # without a note the actions stay on the right
        for button in (
            self.edit_button, self.continue_button, self.regenerate_button, self.copy_button
        ):  # fmt: skip
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
        return self._footer_text if not self._footer.isHidden() else ""

    @property
    def editing(self) -> bool:
        """Whether the bubble is an editor now."""
        return not self.edit_panel.isHidden()

    def append_text(self, text: str) -> None:
        """Add streamed text to the end (shown at the next render, within ~30 ms)."""
        self._text += text
        if self._render_timer.isActive():
            return
        due = self._last_render + self._render_cost / RENDER_LOAD
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
            buttons = self.regenerate_button.sizeHint().width() * 2
            self._footer_reserve = note + buttons + self.continue_button.sizeHint().width() + 16
        if not streaming and self._render_timer.isActive():
            self._render()  # the text that was waiting for its turn

    def set_footer(self, text: str) -> None:
        """Show a small line under the message (notes joined by ``"  ·  "``)."""
        self._footer_text = text
        # wrapped between notes, never inside one ("first word after 0.16 s" stays whole)
        notes = (note.replace(" ", NO_BREAK) for note in text.split(FOOTER_SEPARATOR))
        self._footer.setText(FOOTER_SEPARATOR.join(notes))
        self._footer.setVisible(bool(text))

    def set_actions(
        self, *, edit: bool, regenerate: bool, continue_: bool = False, why_not: str = ""
    ) -> None:
        """Offer Edit, Regenerate and Continue (Copy is always there once a reply is written).

        ``why_not``: Continue is shown but disabled, this saying why (the model's format).
        """
        self.edit_button.setVisible(edit and self._role is Role.USER)
        self.regenerate_button.setVisible(regenerate)
        self.continue_button.setVisible(continue_)
        self.continue_button.setEnabled(not why_not)
        self.continue_button.setToolTip(why_not or CONTINUE_TIP)

    def reopen(self, text: str) -> None:
        """Stream more text into this reply (Continue), after ``text``, its saved text."""
        if self.objectName() == "errorBubble":  # the error note goes; the text stays
            self.setObjectName("assistantBubble")
            self.style().unpolish(self)
            self.style().polish(self)
        self.set_footer("")
        self.set_streaming(True)
        if text != self._text:
            self.set_text(text)

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
        margins = self._column.contentsMargins()
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
        row = self._footer_row.sizeHint().width()
        if not self._footer.isHidden():  # a wrapping label hints narrow: the note on one line
            label = self._footer.fontMetrics().horizontalAdvance(self._footer.text())
            row += label - self._footer.sizeHint().width()
        return max(row, self._footer_reserve)

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
