"""The Model Manager's Library tab: the models on disk, to load, show, delete or add.

The Source column says where each was found (the Hugging Face cache, Herd's old folder,
LM Studio, Ollama, a folder or file the person added).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.errors import HerdError
from app.core.hub import library
from app.core.paths import AppPaths
from app.core.units import size_text
from app.ui.models.hub_bridge import HubBridge
from app.ui.models.model_tables import make_item, make_table, selected_row
from app.ui.models.quantize_dialog import open_quantize_dialog


class LibraryPage(QWidget):
    """The local models as a table, with Load, Show in folder, Delete and Add buttons.

    ``confirm(title, text)`` is asked before a model is deleted.
    """

    model_chosen = Signal(str)  # the .gguf to load (part 1 of a split model)
    message = Signal(str)  # a line for the dialog's status

    def __init__(
        self,
        paths: AppPaths,
        bridge: HubBridge,
        confirm: Callable[[str, str], bool],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.paths = paths
        self.bridge = bridge
        self._confirm = confirm
        self._models: list[library.LocalModel] = []
        self.table = make_table(["Model", "Quant", "Size", "Source", "Last used"])
        self.table.doubleClicked.connect(self.load_selected)
        self.total = QLabel()
        buttons = QHBoxLayout()
        for label, slot in (
            ("Load", self.load_selected),
            ("Show in folder", self.reveal_selected),
            ("Delete…", self.delete_selected),
            ("Add a file…", self.add_file),
            ("Add a folder…", self.add_folder),
            ("Quantize…", self.quantize_selected),
        ):
            button = QPushButton(label)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.total)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        bridge.library_changed.connect(self.refresh)
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """List the library as it is on disk now."""
        self._models = self.bridge.models()
        self.table.setRowCount(len(self._models))
        for row, m in enumerate(self._models):
            parts = f" ({m.n_parts} parts)" if m.n_parts > 1 else ""
            used = (
                time.strftime("%Y-%m-%d %H:%M", time.localtime(m.last_used))
                if m.last_used
                else "never"
            )
            cells = [m.name + parts, m.quant, size_text(m.size), m.where, used]
            for col, text in enumerate(cells):
                self.table.setItem(row, col, make_item(text, row if col == 0 else None))
        total = sum(m.size for m in self._models)
        n = len(self._models)
        self.total.setText(f"{n} model{'s' * (n != 1)}, {size_text(total)} on disk")

    def selected_model(self) -> library.LocalModel | None:
        """The selected model, or None."""
        row = selected_row(self.table)
        return None if row is None else self._models[row]

    @Slot()
    def load_selected(self) -> None:
        """Emit ``model_chosen`` for the selected model and note its use."""
        model = self.selected_model()
        if model is None:
            return
        library.record_use(self.paths, model.path)
        self.model_chosen.emit(str(model.path))
        self.refresh()

    @Slot()
    def reveal_selected(self) -> None:
        """Show the selected model's file in the system's file manager."""
        if model := self.selected_model():
            try:
                library.reveal(model.path)
            except HerdError as exc:
                self.message.emit(exc.one_line())

    @Slot()
    def delete_selected(self) -> None:
        """After asking, delete the selected download (a file added by hand is only forgotten).

        A model of LM Studio's, Ollama's or in a folder of the person's is never deleted:
        the status line says how to remove it there.
        """
        model = self.selected_model()
        if model is None:
            return
        if not model.origin.deletable and model.origin is not library.Origin.ADDED:
            try:
                library.delete(self.paths, model)
            except HerdError as exc:
                self.message.emit(exc.one_line())
            return
        what = "deleted from disk" if model.origin.deletable else "forgotten (the file stays)"
        if not self._confirm(f"Delete {model.name}?", f"{size_text(model.size)} will be {what}."):
            return
        freed = library.delete(self.paths, model)
        self.message.emit(f"{model.name} removed; {size_text(freed)} freed.")
        self.refresh()

    @Slot()
    def quantize_selected(self) -> None:
        """Open the Quantize dialog on the selected model; its result joins the library."""
        model = self.selected_model()
        open_quantize_dialog(self, model.path if model else None, self._on_quantized)

    def _on_quantized(self, path: str) -> None:
        if not Path(path).resolve().is_relative_to(self.paths.hub_cache.resolve()):
            try:  # beside a download it is found already; elsewhere it is added
                library.add_file(self.paths, Path(path))
            except HerdError as exc:
                self.message.emit(exc.one_line())
        self.refresh()

    @Slot()
    def add_file(self) -> None:
        """Ask for a GGUF file elsewhere on disk and add it to the library."""
        name, _ = QFileDialog.getOpenFileName(self, "Add a model", "", "GGUF models (*.gguf)")
        if name:
            try:
                library.add_file(self.paths, Path(name))
            except HerdError as exc:
                self.message.emit(exc.one_line())
            self.refresh()

    @Slot()
    def add_folder(self) -> None:
        """Ask for a folder of GGUF files; the library looks in it (and below) from now on."""
        name = QFileDialog.getExistingDirectory(self, "Add a folder of models")
        if name:
            try:
                library.add_folder(self.paths, Path(name))
            except HerdError as exc:
                self.message.emit(exc.one_line())
            self.refresh()
