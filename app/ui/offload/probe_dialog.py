"""The "Test this context…" dialog: the recall probe in the background, then its heat map.

The probe loads the model in an engine process of its own (through THE load job, with the
Offload & Context dialog's wishes), so the chat's engine and model are left alone; the
model is loaded a second time while it runs. The finished result is kept per model, plan,
context and KV type, and the dialog beside the context slider says it from then on.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal, SignalInstance
from PySide6.QtGui import QCloseEvent, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core import events as ev
from app.core.jobs import CancelToken
from app.core.load import LoadRequest, Planned
from app.core.model_wishes import ModelWishes
from app.core.paths import AppPaths
from app.core.plan.planner import Plan, Wishes
from app.core.probe.heatmap import heatmap_png
from app.core.probe.job import (
    CellDone,
    ProbeEstimate,
    ProbeEvent,
    ProbeFinished,
    probe_in_own_engine,
)
from app.core.probe.result import DEFAULT_DEPTHS, ProbeResult, ProbeSpec, default_lengths
from app.core.probe.store import ProbeStore
from app.core.probe.words import duration, estimate_text, plural, recall_words, tokens_label
from app.core.settings import LoadSettings
from app.ui.worker import JobEnded, JobFailed, JobRunner

_STEPS = 1000  # the progress bar's resolution


@dataclass(frozen=True, slots=True)
class ProbeSetup:
    """What the window lends the probe: its folders and the app-wide load settings."""

    paths: AppPaths
    base: LoadSettings


def recall_text(paths: AppPaths, model: str | Path, kv_type: str) -> str:
    """The stored summary for this model file and KV type ("" when never probed)."""
    return recall_words(ProbeStore.at(paths).records(model), kv_type)


class ProbeDialog(QDialog):
    """Runs one probe on a worker thread; Cancel stops it, Close when it is over."""

    result_ready = Signal(object)  # ProbeResult, complete or not

    def __init__(
        self,
        setup: ProbeSetup,
        request: LoadRequest,
        spec: ProbeSpec,
        parent: QWidget | None = None,
    ) -> None:
        """Start the probe of ``request``'s model with ``spec`` at once."""
        super().__init__(parent)
        self._setup = setup
        self.probe_result: ProbeResult | None = None
        self.running = True
        name = request.path.name
        self.setWindowTitle(f"Test this context: {name}")
        depths = plural(len(spec.depths), "depth")
        lengths = ", ".join(tokens_label(n) for n in spec.lengths)
        intro = QLabel(
            f"Hides a secret number at {depths} of prompts of {lengths} tokens and asks "
            f"<b>{html.escape(name)}</b> for it, {plural(spec.trials, 'time')} per cell. The "
            "model is loaded a second time for this, in an engine of its own.",
            self,
        )
        intro.setWordWrap(True)
        self.status = QLabel("Starting…", self)
        self.status.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, _STEPS)
        self.heatmap = QLabel(self)
        self.heatmap.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.heatmap_area = QScrollArea(self)  # scrolls on a screen too short for the map
        self.heatmap_area.setWidget(self.heatmap)
        self.heatmap_area.setWidgetResizable(True)
        self.heatmap_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.heatmap_area.hide()
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.rejected.connect(self._on_buttons_rejected)
        layout = QVBoxLayout(self)
        for widget in (intro, self.status, self.progress, self.heatmap_area, self.summary):
            layout.addWidget(widget, 1 if widget is self.heatmap_area else 0)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)
        self.resize(560, 260)

        self._runner = JobRunner(self, name="probe")
        self._runner.delivered.connect(self._on_runner_delivered)
        app = QCoreApplication.instance()
        if app is not None:  # the window closing while it runs: stop it, join its thread
            app.aboutToQuit.connect(self._on_app_about_to_quit)
        paths = setup.paths

        def job(cancel: CancelToken) -> Iterator[ProbeEvent]:
            return probe_in_own_engine(paths, request, spec, cancel)

        self._job = self._runner.start(job)

    # --- slots ----------------------------------------------------------------------

    def _on_runner_delivered(self, _job: int, event: object) -> None:
        if isinstance(event, Planned):
            self.status.setText(f"Loading the model ({event.plan.n_ctx:,} tokens of context)…")
        elif isinstance(event, ev.Progress):
            self.status.setText(event.message or f"Loading the model… {event.fraction:.0%}")
        elif isinstance(event, ev.Loaded):
            self.status.setText("Loaded; measuring the prompt speed…")
        elif isinstance(event, ProbeEstimate):
            notes = " ".join(event.notes)
            self.status.setText(f"{estimate_text(event)} {notes}".strip())
        elif isinstance(event, CellDone):
            self.progress.setValue(round(event.fraction * _STEPS))
            c = event.cell
            found = "found" if c.correct else "missed"
            self.status.setText(
                f"{event.done} of {event.total}: {c.n_tokens:,} tokens, needle at "
                f"{c.depth * 100:.0f}%: {found}. About {duration(event.eta_s)} left."
            )
        elif isinstance(event, ProbeFinished):
            self._show_result(event.result)
        elif isinstance(event, ev.Failed | ev.EngineCrashed):
            hint = f" {event.hint}" if isinstance(event, ev.Failed) else ""
            if not (isinstance(event, ev.Failed) and event.cancelled):
                self.status.setText(f"The probe failed: {event.message}{hint}")
        elif isinstance(event, JobFailed):
            self.status.setText(f"The probe failed: {event.error}")
        elif isinstance(event, JobEnded):
            self._on_ended()

    def _show_result(self, result: ProbeResult) -> None:
        self.probe_result = result
        pixmap = QPixmap()
        pixmap.loadFromData(heatmap_png(result), "PNG")
        self.heatmap.setPixmap(pixmap)
        self.heatmap.setMinimumSize(pixmap.size())  # scrolled, never squeezed
        self.heatmap_area.setMinimumHeight(min(pixmap.height(), 200))
        self.heatmap_area.show()
        rest = self.sizeHint().height() - self.heatmap_area.sizeHint().height()
        self.resize(max(self.width(), pixmap.width() + 60), rest + pixmap.height() + 8)
        self.progress.setValue(_STEPS if result.complete else self.progress.value())
        overall = "-" if result.overall is None else f"{result.overall * 100:.0f}%"
        done = "" if result.complete else " Stopped early: grey cells were not run."
        self.summary.setText(
            f"Found {overall} of {plural(len(result.cells), 'needle')} in "
            f"{duration(result.seconds)}.{done}"
        )
        self.summary.show()
        self.status.setText("Done." if result.complete else "Stopped.")
        if result.complete:
            try:
                ProbeStore.at(self._setup.paths).add(result)
            except OSError as exc:
                self.status.setText(f"Done, but the result was not kept: {exc}")
        self.result_ready.emit(result)

    def _on_ended(self) -> None:
        self.running = False
        self.buttons.setStandardButtons(QDialogButtonBox.StandardButton.Close)

    def _on_app_about_to_quit(self) -> None:
        self._runner.shutdown(timeout=30.0)

    def _on_buttons_rejected(self) -> None:
        if self.running:
            self.status.setText("Stopping after the current answer…")
            self._runner.cancel(self._job)
        else:
            self.reject()

    # --- closing --------------------------------------------------------------------

    def done(self, result: int) -> None:
        """Stop the probe (if it still runs) and wait for its engine to end."""
        self._runner.shutdown(timeout=30.0)
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Closing the window stops the probe too."""
        self._runner.shutdown(timeout=30.0)
        super().closeEvent(event)


class ProbePanel(Protocol):
    """What the launcher uses of the Offload & Context panel."""

    probe_button: QPushButton
    recall_label: QLabel
    plan_changed: SignalInstance

    @property
    def plan(self) -> Plan: ...  # noqa: D102

    @property
    def wishes(self) -> Wishes: ...  # noqa: D102


class ProbeLauncher(QObject):
    """Wires "Test this context…" into an Offload & Context dialog, and its recall line."""

    def __init__(self, offload: QWidget, panel: ProbePanel, model: Path, setup: ProbeSetup) -> None:
        """Show the button and the stored summary in ``panel``, a part of ``offload``."""
        super().__init__(offload)
        self._offload = offload
        self._panel = panel
        self._model = model
        self._setup = setup
        self.dialog: ProbeDialog | None = None
        self.depths = DEFAULT_DEPTHS  # where the needles go (the command line's default)
        panel.probe_button.show()
        panel.probe_button.clicked.connect(self._on_probe_button_clicked)
        panel.plan_changed.connect(self._on_panel_plan_changed)
        self._on_panel_plan_changed(panel.plan)

    def request(self) -> tuple[LoadRequest, ProbeSpec]:
        """The load and the probe the button starts: the plan on screen, its context."""
        plan, wishes = self._panel.plan, self._panel.wishes
        kept = ModelWishes(
            n_ctx=plan.n_ctx,
            kv_type=wishes.kv_type,
            gpu_expert_layers=wishes.gpu_expert_layers,
            flash_attn=wishes.flash_attn,
            allow_disk=wishes.allow_disk,
        )
        request = LoadRequest(self._model, kept, base=self._setup.base)
        return request, ProbeSpec(lengths=default_lengths(plan.n_ctx), depths=self.depths)

    def _on_probe_button_clicked(self) -> None:
        request, spec = self.request()
        self.dialog = ProbeDialog(self._setup, request, spec, self._offload)
        self.dialog.result_ready.connect(self._on_dialog_result_ready)
        self.dialog.open()

    def _on_dialog_result_ready(self, _result: object) -> None:
        self._on_panel_plan_changed(self._panel.plan)

    def _on_panel_plan_changed(self, plan: Plan) -> None:
        panel = self._panel
        panel.probe_button.setEnabled(plan.fits)
        text = recall_text(self._setup.paths, self._model, str(plan.type_k))
        panel.recall_label.setText(text)
        panel.recall_label.setVisible(bool(text))


def attach_probe(
    offload: QWidget, panel: ProbePanel, model: Path, setup: ProbeSetup
) -> ProbeLauncher:
    """Give ``offload``'s panel its "Test this context…" button and recall summary."""
    return ProbeLauncher(offload, panel, model, setup)
