"""The Quantize dialog: a source GGUF, a recipe, a size and fit preview, progress, cancel.

Open it with :func:`open_quantize_dialog` (the Model menu, the Library's Quantize button).
Changing the source, the recipe or the output asks for a new preview (the recipe's
predicted size and the planner's verdict for this computer); Quantize runs
:func:`quantize.job.run_quantize`. Both run on the dialog's one
:class:`~app.ui.worker.JobRunner`, never on the GUI thread. The finished file is emitted as
``quantized``, for the caller to add to the library. Closing the dialog cancels a run; the
job then deletes its partial output.
"""

from __future__ import annotations

import html
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import HerdError
from app.core.hardware.probe import Hardware
from app.ui.banners import ErrorBanner
from app.ui.models.quantize_dialog_jobs import (
    HardwareOnce,
    Preview,
    PreviewFailed,
    RunFailed,
    default_output,
    preview_job,
    preview_text,
    progress_text,
    recipe_tip,
    run_job,
)
from app.ui.worker import JobEnded, JobFailed, JobRunner
from quantize.job import QuantizeDone, QuantizeProgress, QuantizeRequest
from quantize.recipe import Recipe, load_recipes

JOIN_TIMEOUT_S = 10.0


class QuantizeDialog(QDialog):
    """Quantize a GGUF with one of the MoE-aware recipes."""

    quantized = Signal(str)  # the output file, once written

    def __init__(
        self,
        source: Path | None = None,
        parent: QWidget | None = None,
        *,
        hardware: Hardware | None = None,
        recipes: Sequence[Recipe] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Quantize a model")
        self.setMinimumWidth(640)
        self.recipes = list(recipes if recipes is not None else load_recipes())
        self._hardware = HardwareOnce(hardware)
        self._log_dir = log_dir or Path(tempfile.gettempdir()) / "herd-quantize"
        # the window's one worker pattern: previews and the run each on their own runner
        self.previews = JobRunner(self, name="quantize-preview")
        self.runs = JobRunner(self, name="quantize")
        self.previews.delivered.connect(self._on_previews_delivered)
        self.runs.delivered.connect(self._on_runs_delivered)
        self._preview_job = 0
        self._run_job = 0
        self._out_chosen = False  # the person picked the output: keep it across recipes
        self.preview: Preview | None = None
        self.written: Path | None = None

        self.error_banner = ErrorBanner(self)
        self.source_edit = QLineEdit()
        self.source_edit.setReadOnly(True)
        self.source_edit.setPlaceholderText("An F16, BF16 or F32 GGUF (the first part of a split)")
        source_button = QPushButton("Choose…")
        source_button.clicked.connect(self.ask_for_source)
        self.recipe_box = QComboBox()
        for recipe in self.recipes:
            self.recipe_box.addItem(f"{recipe.name} — {recipe.title}", recipe.name)
            last = self.recipe_box.count() - 1
            self.recipe_box.setItemData(last, recipe_tip(recipe), Qt.ItemDataRole.ToolTipRole)
        self.recipe_box.currentIndexChanged.connect(self._on_recipe_box_changed)
        self.out_edit = QLineEdit()
        self.out_edit.setReadOnly(True)
        out_button = QPushButton("Change…")
        out_button.clicked.connect(self.ask_for_output)
        self.imatrix_edit = QLineEdit()
        self.imatrix_edit.setReadOnly(True)
        self.imatrix_edit.setPlaceholderText("None (IQ1/IQ2 recipes need one, from llama-imatrix)")
        imatrix_button = QPushButton("Choose…")
        imatrix_button.clicked.connect(self.ask_for_imatrix)
        self.preview_label = QLabel("Choose a source model.")
        self.preview_label.setWordWrap(True)
        self.preview_label.setTextFormat(Qt.TextFormat.RichText)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.quantize_button = QPushButton("Quantize")
        self.quantize_button.setDefault(True)
        self.quantize_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        self._inputs: list[QWidget] = [source_button, self.recipe_box, out_button, imatrix_button]

        form = QFormLayout()
        form.addRow("Source", _row(self.source_edit, source_button))
        form.addRow("Recipe", self.recipe_box)
        form.addRow("Output", _row(self.out_edit, out_button))
        form.addRow("Importance matrix", _row(self.imatrix_edit, imatrix_button))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.quantize_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.error_banner)
        layout.addLayout(form)
        layout.addSpacing(6)
        layout.addWidget(self.preview_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.quantize_button.setEnabled(False)
        if source is not None:
            self.set_source(Path(source))

    # -- inputs ----------------------------------------------------------------------------

    @property
    def recipe(self) -> Recipe | None:
        """The chosen recipe."""
        index = self.recipe_box.currentIndex()
        return self.recipes[index] if 0 <= index < len(self.recipes) else None

    @property
    def source(self) -> Path | None:
        """The chosen source file."""
        text = self.source_edit.text()
        return Path(text) if text else None

    @property
    def output(self) -> Path | None:
        """Where the result goes."""
        text = self.out_edit.text()
        return Path(text) if text else None

    def set_source(self, path: Path) -> None:
        """Quantize ``path``: the output goes beside it unless one was chosen."""
        self.source_edit.setText(str(path))
        self._refresh()

    def set_recipe(self, name: str) -> None:
        """Choose the recipe called ``name``."""
        index = self.recipe_box.findData(name)
        if index >= 0:
            self.recipe_box.setCurrentIndex(index)

    def set_output(self, path: Path) -> None:
        """Write the result to ``path`` (kept when the recipe changes)."""
        self._out_chosen = True
        self.out_edit.setText(str(path))
        self._refresh()

    @Slot()
    def ask_for_source(self) -> None:
        """Ask for the source GGUF."""
        start = str(self.source.parent) if self.source else ""
        name, _ = QFileDialog.getOpenFileName(self, "Model to quantize", start, "GGUF (*.gguf)")
        if name:
            self.set_source(Path(name))

    @Slot()
    def ask_for_output(self) -> None:
        """Ask where to write the result."""
        start = str(self.output or "")
        name, _ = QFileDialog.getSaveFileName(self, "Save the quantized model", start, "*.gguf")
        if name:
            self.set_output(Path(name if name.endswith(".gguf") else f"{name}.gguf"))

    @property
    def imatrix(self) -> Path | None:
        """The importance matrix to quantize with, if any."""
        text = self.imatrix_edit.text()
        return Path(text) if text else None

    def set_imatrix(self, path: Path | None) -> None:
        """Quantize with this importance matrix (None: without)."""
        self.imatrix_edit.setText(str(path) if path else "")
        self._refresh()

    @Slot()
    def ask_for_imatrix(self) -> None:
        """Ask for an importance matrix (llama-imatrix's .gguf or .dat)."""
        start = str(self.source.parent) if self.source else ""
        filters = "Importance matrix (*.gguf *.dat);;All files (*)"
        name, _ = QFileDialog.getOpenFileName(self, "Importance matrix", start, filters)
        if name:
            self.set_imatrix(Path(name))

    @Slot(int)
    def _on_recipe_box_changed(self, _index: int) -> None:
        self._refresh()

    def _refresh(self) -> None:
        """A new preview for the current inputs (the one still running is dropped)."""
        source, recipe = self.source, self.recipe
        self.preview = None
        self.quantize_button.setEnabled(False)
        if self._preview_job:
            self.previews.cancel(self._preview_job)
            self._preview_job = 0
        if source is None or recipe is None:
            return
        if not self._out_chosen:
            self.out_edit.setText(str(default_output(source, recipe)))
        out = self.output or default_output(source, recipe)
        request = QuantizeRequest(src=source, out=out, recipe=recipe, imatrix=self.imatrix)
        self.preview_label.setText(f"Predicting the size of {source.name} as {recipe.name}…")
        self._preview_job = self.previews.start(preview_job(request, self._hardware))

    # -- running ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether a quantization runs."""
        return bool(self._run_job)

    @Slot()
    def start(self) -> None:
        """Quantize the source with the recipe."""
        if self.running or self.preview is None or not self.preview.runnable:
            return
        plan = self.preview.plan
        request = plan.request
        self.error_banner.hide()
        self.written = None
        log = self._log_dir / f"{request.out.name}.log"
        self._run_job = self.runs.start(run_job(plan, log))
        self._set_running(True)
        self.status_label.setText(f"Quantizing {request.src.name} as {request.recipe.name}…")

    @Slot()
    def cancel(self) -> None:
        """Stop the run; its partial output is deleted."""
        if not self._run_job:
            return
        self.runs.cancel(self._run_job)
        if not self.runs.busy:  # it had not started: no JobEnded will come
            self._run_job = 0
            self._set_running(False)
            self.status_label.setText("Cancelled; nothing was written.")
            return
        self.status_label.setText("Cancelling…")
        self.cancel_button.setEnabled(False)

    def _set_running(self, running: bool) -> None:
        for widget in self._inputs:
            widget.setEnabled(not running)
        self.quantize_button.setVisible(not running)
        self.quantize_button.setEnabled(
            not running and self.preview is not None and self.preview.runnable
        )
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        if running:
            self.progress.setValue(0)

    # -- events ----------------------------------------------------------------------------

    @Slot(int, object)
    def _on_previews_delivered(self, job: int, event: object) -> None:
        if job != self._preview_job:
            return  # a preview for inputs since changed
        if isinstance(event, Preview):
            self.preview = event
            self.preview_label.setText(preview_text(event))
            self.quantize_button.setEnabled(event.runnable and not self.running)
        elif isinstance(event, PreviewFailed):
            self.preview_label.setText(_escaped(f"No preview: {event.error.one_line()}"))
        elif isinstance(event, JobFailed):
            self.preview_label.setText(_escaped(f"No preview: {event.error}"))
        elif isinstance(event, JobEnded):
            self._preview_job = 0

    @Slot(int, object)
    def _on_runs_delivered(self, job: int, event: object) -> None:
        if job != self._run_job:
            return
        if isinstance(event, QuantizeProgress):
            self.progress.setValue(round(event.fraction * 1000))
            self.status_label.setText(progress_text(event.written, event.expected, event.eta_s))
        elif isinstance(event, QuantizeDone):
            self.written = Path(event.outputs[0])
            self.status_label.setText(
                f"Done in {event.seconds:.0f} s: {self.written.name} is in your library."
            )
            self.quantized.emit(str(self.written))
        elif isinstance(event, RunFailed):
            self._show(event.error)
            self.status_label.setText("")
        elif isinstance(event, JobFailed):
            self.error_banner.show_error(f"Quantizing failed: {event.error}")
        elif isinstance(event, JobEnded):
            cancelled = self.written is None and not self.error_banner.isVisible()
            self._run_job = 0
            self._set_running(False)
            if cancelled:
                self.status_label.setText("Cancelled; nothing was written.")

    def _show(self, error: HerdError) -> None:
        self.error_banner.show_error(error.user_message, error.hint, error.log_path)

    # -- closing ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Cancel every job and join its thread (a run deletes its partial output)."""
        self.previews.shutdown(JOIN_TIMEOUT_S)
        self.runs.shutdown(JOIN_TIMEOUT_S)
        self._run_job = self._preview_job = 0

    def done(self, result: int) -> None:
        """Closing (Close, Esc, the title bar) ends the jobs first."""
        self.shutdown()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Closing the window ends the jobs."""
        self.shutdown()
        super().closeEvent(event)


def _escaped(text: str) -> str:
    return html.escape(text, quote=False)


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        row.addWidget(widget, 1 if i == 0 else 0)
    return box


def open_quantize_dialog(
    parent: QWidget, source: Path | None, on_quantized: Callable[[str], object]
) -> QuantizeDialog:
    """Open the dialog on ``source``; ``on_quantized(path)`` adds the result to the library."""
    top = parent.window()
    while (above := top.parentWidget()) is not None:  # outlive a Model Manager closed meanwhile
        top = above.window()
    dialog = QuantizeDialog(source, top)
    dialog.quantized.connect(on_quantized)
    app = QCoreApplication.instance()
    if app is not None:  # quitting with the dialog open still stops the child and cleans up
        app.aboutToQuit.connect(dialog.shutdown)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()  # not modal: quantizing takes long, the chat stays usable
    return dialog
