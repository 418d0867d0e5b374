"""ChatHeader: the open conversation's title and its own system prompt, above the transcript."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.chat.presets import PresetStore

SUMMARY_CHARS = 70
CUSTOM = "__custom__"


def summary(system_prompt: str) -> str:
    """One short line for a system prompt."""
    line = " ".join(system_prompt.split())
    if not line:
        return "No system prompt"
    return line if len(line) <= SUMMARY_CHARS else line[: SUMMARY_CHARS - 1].rstrip() + "…"


class SystemPromptDialog(QDialog):
    """Choose a preset or write this conversation's own system prompt."""

    def __init__(self, current: str, presets: PresetStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("System prompt for this chat")
        self.setMinimumSize(560, 360)
        self._presets = presets
        form = QFormLayout()
        self.preset_box = QComboBox(self)
        for preset in presets.list():
            self.preset_box.addItem(preset.name, preset.id)
        self.preset_box.addItem("Custom", CUSTOM)
        form.addRow("Start from:", self.preset_box)
        self.editor = QPlainTextEdit(self)
        self.editor.setPlainText(current)
        self.editor.setPlaceholderText("No system prompt: the model gets only the conversation.")
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addWidget(self.editor, 1)
        note = QLabel(
            "The system prompt applies to this conversation only, from the next reply on. "
            "Presets are managed in Settings.",
            self,
        )
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(placeholder-text);")
        column.addWidget(note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        column.addWidget(buttons)
        self._select_matching(current)
        self.preset_box.activated.connect(self._on_preset_box_activated)

    @property
    def text(self) -> str:
        """The system prompt as written."""
        return self.editor.toPlainText().strip()

    def _select_matching(self, text: str) -> None:
        for preset in self._presets.list():
            if preset.text.strip() == text.strip():
                self.preset_box.setCurrentIndex(self.preset_box.findData(preset.id))
                return
        self.preset_box.setCurrentIndex(self.preset_box.findData(CUSTOM))

    @Slot(int)
    def _on_preset_box_activated(self, index: int) -> None:
        preset_id = self.preset_box.itemData(index)
        if preset_id != CUSTOM:
            self.editor.setPlainText(self._presets.text_for(preset_id))


class ChatHeader(QFrame):
    """A slim strip: the chat's title, its system prompt with a Change button, and toggles."""

    system_prompt_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatHeader")
        self.setStyleSheet("#chatHeader { border-bottom: 1px solid palette(midlight); }")
        row = QHBoxLayout(self)
        row.setContentsMargins(20, 6, 16, 6)
        row.setSpacing(10)
        self.title_label = QLabel(self)
        font = self.title_label.font()
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        row.addWidget(self.title_label)
        self.prompt_label = QLabel(self)
        self.prompt_label.setStyleSheet("color: palette(placeholder-text);")
        row.addWidget(self.prompt_label, 1)
        self.prompt_button = QPushButton("System prompt…", self)
        self.prompt_button.setToolTip("Set this conversation's own system prompt")
        self.prompt_button.setFlat(True)
        self.prompt_button.clicked.connect(self.system_prompt_requested)
        row.addWidget(self.prompt_button)
        self._row = row
        self.set_conversation("New chat", "")

    def add_toggle(self, action: QAction) -> QToolButton:
        """A button at the right end that shows and follows ``action`` (a checkable one)."""
        button = QToolButton(self)
        button.setDefaultAction(action)
        button.setAutoRaise(True)
        self._row.addWidget(button)
        return button

    def set_conversation(self, title: str, system_prompt: str) -> None:
        """Show a conversation's title and system prompt."""
        self.title_label.setText(title)
        self.prompt_label.setText(f"·  {summary(system_prompt)}")
        self.prompt_label.setToolTip(system_prompt or "No system prompt")
