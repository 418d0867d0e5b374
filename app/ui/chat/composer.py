"""Composer: where the person writes; Enter sends, Shift+Enter starts a new line."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.paths import AppPaths
from app.ui.images.image_panel import ImagePanel, image_paths_from_mime

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
    media_pasted = Signal(QMimeData)  # an image or image files pasted into the editor

    def canInsertFromMimeData(self, source: QMimeData) -> bool:  # noqa: N802 - Qt override
        """Images can be pasted too (they go to the image panel)."""
        return source.hasImage() or source.hasUrls() or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:  # noqa: N802 - Qt override
        """Paste text as text; an image, or files, go to the image panel."""
        if source.hasImage() or image_paths_from_mime(source):
            self.media_pasted.emit(source)
            return
        super().insertFromMimeData(source)

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

    def __init__(self, parent: QWidget | None = None, *, paths: AppPaths | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self._ready = False
        self._loading = False
        self._generating = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 10, 16, 12)
        outer.setSpacing(8)
        self.image_panel: ImagePanel | None = None
        if paths is not None:
            self.image_panel = ImagePanel(paths, self)
            self.image_panel.images_changed.connect(self._on_image_panel_images_changed)
            self.image_panel.busy_changed.connect(self._on_image_panel_busy_changed)
            outer.addWidget(self.image_panel)
        layout = QHBoxLayout()
        layout.setSpacing(10)
        outer.addLayout(layout)
        if self.image_panel is not None:
            attach = self.image_panel.attach_button
            attach.setFixedSize(36, 36)
            layout.addWidget(attach, 0, Qt.AlignmentFlag.AlignBottom)
        self.editor = PromptEdit(self)
        self.editor.setObjectName("promptEdit")
        # a framed box that stands out from the window in light and dark palettes alike
        self.editor.setStyleSheet(
            "#promptEdit { background: palette(base); border: 1px solid palette(mid);"
            " border-radius: 8px; padding: 4px 6px; }"
            "#promptEdit:focus { border: 1px solid palette(highlight); }"
        )
        self.editor.setTabChangesFocus(True)
        self.editor.submit_requested.connect(self._on_editor_submit_requested)
        self.editor.stop_requested.connect(self._on_editor_stop_requested)
        self.editor.media_pasted.connect(self._on_editor_media_pasted)
        self.editor.textChanged.connect(self._on_editor_text_changed)
        layout.addWidget(self.editor, 1)
        self.button = QPushButton("Send", self)
        self.button.setObjectName("sendButton")
        self.button.setDefault(False)
        self.button.setAutoDefault(False)
        self.button.setMinimumWidth(84)
        self.button.clicked.connect(self._on_button_clicked)
        side = QVBoxLayout()
        side.setSpacing(4)
        side.addStretch(1)
        self.token_label = QLabel(self)
        self.token_label.setObjectName("draftTokens")
        self.token_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.token_label.setStyleSheet("color: palette(placeholder-text); font-size: 8.5pt;")
        self.token_label.setToolTip("Tokens in your message as the model will read it")
        side.addWidget(self.token_label)
        side.addWidget(self.button)
        layout.addLayout(side)
        self._fit_height()
        self._refresh()

    # -- state -----------------------------------------------------------------------
    @property
    def text(self) -> str:
        """What is written now."""
        return self.editor.toPlainText()

    @property
    def images(self) -> tuple[str, ...]:
        """Paths of the images attached to the draft."""
        return self.image_panel.images if self.image_panel is not None else ()

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
        """Empty the editor and the attached images."""
        self.editor.clear()
        if self.image_panel is not None:
            self.image_panel.clear()

    def set_draft_tokens(self, n_tokens: int | None) -> None:
        """Show how many tokens the draft is (None or 0 with no draft: nothing)."""
        draft = bool(self.text.strip() or self.images)
        self.token_label.setText(f"{n_tokens:,} tokens" if n_tokens and draft else "")

    # -- slots -----------------------------------------------------------------------
    @Slot()
    def _on_editor_submit_requested(self) -> None:
        if self._generating or not self._ready or self._images_busy():
            return  # images still being checked: Send waits for them
        text = self.text
        if not text.strip() and not self.images:
            return
        self.send_requested.emit(text)

    @Slot(QMimeData)
    def _on_editor_media_pasted(self, mime: QMimeData) -> None:
        if self.image_panel is None:
            return
        if mime.hasImage():
            self.image_panel.paste_from_clipboard()
        else:
            self.image_panel.add_paths(image_paths_from_mime(mime))

    @Slot(list)
    def _on_image_panel_images_changed(self, _paths: list) -> None:
        self._refresh()

    @Slot(bool)
    def _on_image_panel_busy_changed(self, _busy: bool) -> None:
        self._refresh()

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
        if not self.text.strip() and not self.images:
            self.token_label.setText("")
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
            self.button.setEnabled(
                self._ready and not self._images_busy() and bool(self.text.strip() or self.images)
            )
            if self._images_busy():
                self.button.setToolTip("Waiting for the images to be checked\u2026")
            hint = HINT_READY if self._ready else HINT_LOADING if self._loading else HINT_NO_MODEL
        self.editor.setPlaceholderText(hint)

    def _images_busy(self) -> bool:
        return self.image_panel is not None and self.image_panel.busy

    def _fit_height(self) -> None:
        """Grow with the text from MIN_LINES up to MAX_LINES, then scroll."""
        lines = int(self.editor.document().documentLayout().documentSize().height())
        lines = min(MAX_LINES, max(MIN_LINES, lines))
        doc_margin = self.editor.document().documentMargin()
        frame = self.editor.frameWidth() * 2
        height = lines * self.editor.fontMetrics().lineSpacing() + int(2 * doc_margin) + frame
        self.editor.setFixedHeight(height + 4)
