"""The system-prompt preset editor: a list of presets, the chosen one's name and text."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.chat.presets import PresetStore
from app.core.errors import HerdError

_ID = Qt.ItemDataRole.UserRole


def hint_label(text: str) -> QLabel:
    """A wrapped label in the palette's quiet (placeholder) colour, for explanations."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


class PresetEditor(QWidget):
    """System-prompt presets: a list on the left, the chosen one's name and text on the right."""

    def __init__(self, presets: PresetStore, parent: QWidget | None = None) -> None:
        """Show the presets in ``presets``; edits go straight into the store (in memory)."""
        super().__init__(parent)
        self._store = presets
        self.list = QListWidget()
        self.list.setMinimumWidth(200)
        self.list.setStyleSheet("QListWidget::item { padding: 3px 6px; }")
        self.new_button = QPushButton("New")
        self.duplicate_button = QPushButton("Duplicate")
        self.delete_button = QPushButton("Delete")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Preset name")
        self.text_edit = QPlainTextEdit()
        self.text_edit.setPlaceholderText("No system prompt: the model gets only the chat.")
        self.note = hint_label("")
        self.default_combo = QComboBox()
        self.default_combo.setToolTip("The system prompt a new conversation starts with.")
        self._build()
        self.list.currentItemChanged.connect(self._on_list_current_item_changed)
        self.new_button.clicked.connect(self._on_new_button_clicked)
        self.duplicate_button.clicked.connect(self._on_duplicate_button_clicked)
        self.delete_button.clicked.connect(self._on_delete_button_clicked)
        self.name_edit.textEdited.connect(self._on_name_edit_text_edited)
        self.text_edit.textChanged.connect(self._on_text_edit_text_changed)
        self.refresh()

    def _build(self) -> None:
        buttons = QHBoxLayout()
        for b in (self.new_button, self.duplicate_button, self.delete_button):
            buttons.addWidget(b)
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        left.addLayout(buttons)
        right = QFormLayout()
        right.addRow("Name:", self.name_edit)
        right.addRow("Prompt:", self.text_edit)
        right.addRow("", self.note)
        grid = QGridLayout(self)
        grid.addLayout(left, 0, 0)
        grid.addLayout(right, 0, 1)
        grid.setColumnStretch(1, 1)
        grid.setHorizontalSpacing(14)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("New chats start with:"))
        bottom.addWidget(self.default_combo, 1)
        grid.addLayout(bottom, 1, 0, 1, 2)
        if self._store.load_error is not None:
            grid.addWidget(hint_label(self._store.load_error.one_line()), 2, 0, 1, 2)

    def _header_font(self) -> QFont:
        font = QFont(self.list.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 0.85)
        return font

    def current_id(self) -> str:
        """The id of the preset shown on the right ("" if none)."""
        item = self.list.currentItem()
        return str(item.data(_ID)) if item is not None else ""

    def default_id(self) -> str:
        """The preset chosen for new chats."""
        return str(self.default_combo.currentData())

    def set_default_id(self, preset_id: str) -> None:
        """Choose the preset for new chats (the default one if ``preset_id`` is gone)."""
        index = self.default_combo.findData(self._store.resolve(preset_id).id)
        self.default_combo.setCurrentIndex(max(index, 0))

    def refresh(self, select: str = "") -> None:
        """Rebuild the list and the default choice from the store."""
        select = select or self.current_id()
        default = self.default_combo.currentData() or ""
        self.list.blockSignals(True)
        self.default_combo.blockSignals(True)
        self.list.clear()
        self.default_combo.clear()
        presets = self._store.list()
        builtin = [p for p in presets if p.builtin]
        mine = [p for p in presets if not p.builtin]
        for title, group in (("BUILT-IN", builtin), ("YOURS", mine)):
            if group:
                header = QListWidgetItem(title, self.list)
                header.setFlags(Qt.ItemFlag.NoItemFlags)
                header.setFont(self._header_font())
                if self.list.count() > 1:  # air above the second heading
                    header.setSizeHint(QSize(0, 2 * QFontMetrics(header.font()).height()))
                    header.setTextAlignment(Qt.AlignmentFlag.AlignBottom)
            for preset in group:
                item = QListWidgetItem(preset.name, self.list)
                item.setData(_ID, preset.id)
                self.default_combo.addItem(preset.name, preset.id)
        self.list.blockSignals(False)
        self.default_combo.blockSignals(False)
        if default:
            self.set_default_id(str(default))
        self.select(select or self._store.list()[0].id)

    def select(self, preset_id: str) -> None:
        """Show one preset on the right."""
        for row in range(self.list.count()):
            if self.list.item(row).data(_ID) == preset_id:
                self.list.setCurrentRow(row)
                return
        self.list.setCurrentRow(1)

    @Slot()
    def _on_list_current_item_changed(self) -> None:
        preset = self._store.resolve(self.current_id())
        for w in (self.name_edit, self.text_edit):
            w.blockSignals(True)
            w.setReadOnly(preset.builtin)
        self.name_edit.setText(preset.name)
        self.text_edit.setPlainText(preset.text)
        for w in (self.name_edit, self.text_edit):
            w.blockSignals(False)
        self.delete_button.setEnabled(not preset.builtin)
        self._show_note()

    def _show_note(self, error: str = "") -> None:
        if error:
            self.note.setText(f"<span style='color:#d9534f'>{error}</span>")
        elif self._store.resolve(self.current_id()).builtin:
            self.note.setText("Built-in presets can't be changed; duplicate one to make your own.")
        else:
            self.note.setText("Changes are saved when you press OK or Apply.")

    @Slot()
    def _on_new_button_clicked(self) -> None:
        preset = self._store.add(self._store.unique_name("New preset"))
        self.refresh(select=preset.id)
        self.name_edit.setFocus()
        self.name_edit.selectAll()

    @Slot()
    def _on_duplicate_button_clicked(self) -> None:
        self.refresh(select=self._store.duplicate(self.current_id()).id)

    @Slot()
    def _on_delete_button_clicked(self) -> None:
        preset_id = self.current_id()
        row = self.list.currentRow()
        self._store.delete(preset_id)
        self.refresh(select="-")
        self.list.setCurrentRow(min(row, self.list.count() - 1))
        if self.list.currentItem() is None or not self.current_id():
            self.select(self._store.list()[0].id)

    @Slot(str)
    def _on_name_edit_text_edited(self, name: str) -> None:
        try:
            preset = self._store.update(self.current_id(), name=name)
        except HerdError as exc:
            self._show_note(exc.one_line())
            return
        self._show_note()
        self.list.currentItem().setText(preset.name)
        self.default_combo.setItemText(self.default_combo.findData(preset.id), preset.name)

    @Slot()
    def _on_text_edit_text_changed(self) -> None:
        preset_id = self.current_id()
        if not self._store.resolve(preset_id).builtin:
            self._store.update(preset_id, text=self.text_edit.toPlainText())
