"""Composer: where the person writes; Enter sends, Shift+Enter starts a new line."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPlainTextEdit, QPushButton, QWidget

MIN_LINES = 2
MAX_LINES = 8

HINT_NO_MODEL = "No model loaded. Click Load… above to open a .gguf model file."
HINT_LOADING = "Loading the model…"
HINT_READY = "Message the model  (Enter sends, Shift+Enter for a new line)"
HINT_GENERATING = "Writing a reply…  (Esc stops it)"


class PromptEdit(QPlainTextEdit):
    """A plain-text editor that turns Enter into a send and Esc into a stop."""

    submit_requested = Signal()
    stop_requested = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        """Enter sends, Shift+Enter inserts a newline, Esc stops a reply."""
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
            else:
                self.submit_requested.emit()
            event.accept()
            return
        if key == Qt.Key.Key_Escape:
            self.stop_requested.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class Composer(QFrame):
    """The message editor and its Send/Stop button."""

    send_requested = Signal(str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self._ready = False
        self._loading = False
        self._generating = False
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 10, 16, 12)
        layout.setSpacing(10)
        self.editor = PromptEdit(self)
        self.editor.setObjectName("promptEdit")
        self.editor.setTabChangesFocus(True)
        self.editor.submit_requested.connect(self._on_editor_submit_requested)
        self.editor.stop_requested.connect(self._on_editor_stop_requested)
        self.editor.textChanged.connect(self._on_editor_text_changed)
        layout.addWidget(self.editor, 1)
        self.button = QPushButton("Send", self)
        self.button.setObjectName("sendButton")
        self.button.setDefault(False)
        self.button.setAutoDefault(False)
        self.button.setMinimumWidth(84)
        self.button.clicked.connect(self._on_button_clicked)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignBottom)
        self._fit_height()
        self._refresh()

    # -- state -----------------------------------------------------------------------
    @property
    def text(self) -> str:
        """What is written now."""
        return self.editor.toPlainText()

    @property
    def generating(self) -> bool:
        """Whether the button is a Stop button now."""
        return self._generating

    def set_ready(self, ready: bool, *, loading: bool = False) -> None:
        """Whether a model is loaded (and whether one is loading)."""
        self._ready = ready
        self._loading = loading
        self._refresh()

    def set_generating(self, generating: bool) -> None:
        """Switch the button between Send and Stop."""
        self._generating = generating
        self._refresh()

    def clear(self) -> None:
        """Empty the editor."""
        self.editor.clear()

    # -- slots -----------------------------------------------------------------------
    @Slot()
    def _on_editor_submit_requested(self) -> None:
        if self._generating or not self._ready:
            return
        text = self.text
        if not text.strip():
            return
        self.editor.clear()
        self.send_requested.emit(text)

    @Slot()
    def _on_editor_stop_requested(self) -> None:
        if self._generating:
            self.stop_requested.emit()

    @Slot()
    def _on_button_clicked(self) -> None:
        if self._generating:
            self.stop_requested.emit()
        else:
            self._on_editor_submit_requested()
        self.editor.setFocus()

    @Slot()
    def _on_editor_text_changed(self) -> None:
        self._fit_height()
        self._refresh()

    # -- helpers ---------------------------------------------------------------------
    def _refresh(self) -> None:
        if self._generating:
            self.button.setText("Stop")
            self.button.setToolTip("Stop the reply (Esc)")
            self.button.setEnabled(True)
            hint = HINT_GENERATING
        else:
            self.button.setText("Send")
            self.button.setToolTip("Send (Enter)")
            self.button.setEnabled(self._ready and bool(self.text.strip()))
            hint = HINT_READY if self._ready else HINT_LOADING if self._loading else HINT_NO_MODEL
        self.editor.setPlaceholderText(hint)

    def _fit_height(self) -> None:
        """Grow with the text from MIN_LINES up to MAX_LINES, then scroll."""
        lines = int(self.editor.document().documentLayout().documentSize().height())
        lines = min(MAX_LINES, max(MIN_LINES, lines))
        doc_margin = self.editor.document().documentMargin()
        frame = self.editor.frameWidth() * 2
        height = lines * self.editor.fontMetrics().lineSpacing() + int(2 * doc_margin) + frame
        self.editor.setFixedHeight(height + 4)
