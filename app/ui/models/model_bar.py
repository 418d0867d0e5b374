"""ModelBar: which model is loaded, with Load, Unload and a cancellable progress bar."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core import events as ev
from app.core.demo import DEMO_NAME, is_demo
from app.core.errors import HerdError, one_line
from app.core.hub import library
from app.core.paths import AppPaths
from app.core.units import size_text

logger = logging.getLogger(__name__)
_MUTED = "color: palette(placeholder-text);"


def on_disk(facts: ev.ModelFacts, file_size: int = 0) -> str:
    """The model's files' size, all parts, with the projector apart: ``61.4 GiB + 0.8 GiB``.

    ``file_size`` is the header's sum over the parts (the load job read it), the same figure
    the library and the Load menu give; without it, llama.cpp's size of the weights.
    """
    text = size_text(file_size or facts.size_bytes)
    if facts.vision and facts.projector:
        try:
            text += f" + {size_text(Path(facts.projector).stat().st_size)} projector"
        except OSError:
            pass
    return text


UNBROKEN_MAX = 32


def unbroken(line: str) -> str:
    """A line of ``·``-separated phrases that wraps between short phrases, not inside one.

    A phrase longer than :data:`UNBROKEN_MAX` characters may still wrap (a sentence).
    """
    phrases = [p.strip() for p in line.split("·")]
    kept = [p.replace(" ", "\u00a0") if len(p) <= UNBROKEN_MAX else p for p in phrases]
    return "  ·  ".join(p for p in kept if p)


def library_menu_items(paths: AppPaths) -> list[tuple[str, str, str]]:
    """The Load menu: downloaded and added models (most recently used first)."""
    try:
        models = library.list_models(paths)
    except (HerdError, OSError) as exc:
        logger.warning("could not list the local models: %s", exc)
        return []
    items = []
    for model in models:
        size = size_text(model.size)
        label = "  ·  ".join(p for p in (model.name, model.quant, size) if p)
        items.append((label, str(model.path), f"{model.path}\n{model.source}"))
    return items


class ModelBar(QFrame):
    """The strip at the top: which model is loaded, and Load/Unload/Cancel."""

    load_requested = Signal(str)
    unload_requested = Signal()
    cancel_requested = Signal()
    plan_requested = Signal()
    file_opened = Signal(str)  # a model file the person picked or dropped
    manager_requested = Signal()

    def __init__(self, start_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelBar")
        self.setStyleSheet("#modelBar { border-bottom: 1px solid palette(mid); }")
        self._start_dir = start_dir
        row = QHBoxLayout(self)
        row.setContentsMargins(16, 10, 16, 10)
        row.setSpacing(10)
        text = QVBoxLayout()
        text.setSpacing(2)
        self.name_label = QLabel(self)
        font = QFont()  # bold only: the size follows the app's font size setting
        font.setBold(True)
        self.name_label.setFont(font)
        self.details_label = QLabel(self)
        self.details_label.setWordWrap(True)
        self.plan_label = QLabel(self)  # which plan the model was loaded with
        self.plan_label.setWordWrap(True)
        self.plan_label.setStyleSheet(_MUTED)
        self.plan_label.hide()
        text.addWidget(self.name_label)
        text.addWidget(self.details_label)
        text.addWidget(self.plan_label)
        row.addLayout(text, 1)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(False)
        row.addWidget(self.progress)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_requested)
        row.addWidget(self.cancel_button)
        self.plan_button = QPushButton("Offload && Context…", self)
        self.plan_button.setToolTip(
            "Plan where the model's parts go (GPU, system RAM) and how long a context fits"
        )
        self.plan_button.clicked.connect(self.plan_requested)
        self.plan_button.setEnabled(False)
        self.load_button = QToolButton(self)
        self.load_button.setText("Load…")
        self.load_button.setToolTip(
            "Open a .gguf model file; the arrow lists the models Herd knows about"
        )
        self.load_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.load_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.load_button.setMinimumHeight(self.plan_button.sizeHint().height())
        self.load_button.clicked.connect(self.ask_for_file)
        self.library_menu = QMenu(self)
        self.load_button.setMenu(self.library_menu)
        self._library: list[tuple[str, str, str]] = []
        self._rebuild_menu()
        row.addWidget(self.load_button)
        self.unload_button = QPushButton("Unload", self)
        self.unload_button.setToolTip("Free the model's memory")
        self.unload_button.clicked.connect(self.unload_requested)
        row.addWidget(self.unload_button)
        row.addWidget(self.plan_button)  # Load, Unload, then Offload & Context
        self.models_button = QPushButton("Models…", self)
        self.models_button.setToolTip(
            "The Model Manager: find and download Llama 4, and the models on this computer"
        )
        self.models_button.clicked.connect(self.manager_requested)
        row.addWidget(self.models_button)
        self.show_none()

    def show_none(self, details: str = "Load a .gguf model file to start chatting.") -> None:
        """No model is loaded (and so no plan is in use)."""
        self._set("No model loaded", details, loading=False, loaded=False)
        self.show_plan("")

    def show_loading(self, path: Path) -> None:
        """A load has started."""
        self._set(path.name, "Loading…", loading=True, loaded=False)
        self.progress.setRange(0, 0)  # moving, not an empty box, until llama.cpp says how far

    def show_progress(self, fraction: float, message: str) -> None:
        """Loading goes on."""
        if fraction > 0 and self.progress.maximum() == 0:
            self.progress.setRange(0, 1000)
        self.progress.setValue(int(fraction * 1000))
        self.details_label.setText(f"{message or 'Loading'}… {fraction:.0%}")

    def show_model(self, facts: ev.ModelFacts, file_size: int = 0) -> None:
        """A model is loaded (the demo is named as the small stand-in it is)."""
        name = facts.name or Path(facts.path).stem
        context = f"context {facts.n_ctx:,}"
        if facts.n_ctx_train:
            context = f"context {facts.n_ctx:,} of {facts.n_ctx_train:,}"
        parts = [Path(facts.path).name, facts.description, context, on_disk(facts, file_size)]
        if is_demo(facts.path):
            name = f"Demo model: {DEMO_NAME}"
            parts = ["a tiny model to try Herd with, not Llama 4", context]
        details = "  ·  ".join(p for p in parts if p)
        self._set(name, details, loading=False, loaded=True)
        self.details_label.setToolTip(facts.path)

    def show_plan(self, line: str, notes: tuple[str, ...] = ()) -> None:
        """The plan in use ("" hides it); ``notes``: where the load differs from it."""
        self.plan_label.setVisible(bool(line))
        text = unbroken(line)
        if notes:
            text += "  ·  differs from the plan: " + "; ".join(notes)
        self.plan_label.setText(text)
        self.plan_label.setStyleSheet("color: #b8860b;" if notes else _MUTED)
        self.plan_label.setToolTip("\n".join(notes) or "Offload && Context… shows why")

    def show_error(self, path: Path | None, message: str, hint: str) -> None:
        """A load failed."""
        title = f"Could not load {path.name}" if path else "Could not load the model"
        self._set(title, one_line(message, hint), loading=False, loaded=False)
        self.details_label.setStyleSheet("color: #d9534f;")

    def _set(self, name: str, details: str, *, loading: bool, loaded: bool) -> None:
        self.name_label.setText(name)
        self.details_label.setText(unbroken(details))
        self.details_label.setStyleSheet(_MUTED)
        self.details_label.setToolTip("")
        self.progress.setVisible(loading)
        self.cancel_button.setVisible(loading)
        self.load_button.setEnabled(not loading)
        self.unload_button.setVisible(loaded)

    # -- the library ----------------------------------------------------------------
    @property
    def library(self) -> list[str]:
        """The model files in the Load menu, in menu order."""
        return [path for _, path, _ in self._library]

    def set_library(self, items: list[tuple[str, str, str]]) -> None:
        """Show these models in the Load menu: (label, path to load, tooltip) each."""
        self._library = list(items)
        self._rebuild_menu()

    def remember(self, path: str | Path) -> None:
        """A model file the person opened or dropped: it joins the library."""
        self.file_opened.emit(str(Path(path)))

    def _rebuild_menu(self) -> None:
        menu = self.library_menu
        menu.clear()
        for label, path, tip in self._library:
            action = menu.addAction(label)
            action.setToolTip(tip or path)
            action.triggered.connect(lambda _=False, p=path: self.load_requested.emit(p))
        if not self._library:
            menu.addAction("No models yet").setEnabled(False)
        menu.setToolTipsVisible(True)
        menu.addSeparator()
        menu.addAction("Open a model file…", self.ask_for_file)
        menu.addAction("Download models…", self.manager_requested.emit)

    @Slot()
    def ask_for_file(self) -> None:
        """Ask for a .gguf file and load it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a model", str(self._start_dir), "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self._start_dir = Path(path).parent
            self.remember(path)
            self.load_requested.emit(path)
