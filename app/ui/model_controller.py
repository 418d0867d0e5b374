"""ModelController: the loaded model's life in the window (load, plan, unload, crash).

It turns the bridge's model events into what the model bar, the banners, the composer and
the status bar show, and it owns the "Offload & Context" dialog.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow

from app.core import events as ev
from app.core.errors import HerdError
from app.core.gguf import read_gguf
from app.core.hardware import Device, merge_engine_devices, probe_hardware
from app.core.planner import Wishes
from app.core.settings import LoadSettings, Settings, TemplateChoice
from app.ui.banners import CrashBanner, TemplateNotice
from app.ui.bridge import EngineBridge
from app.ui.chat_view import ChatView
from app.ui.composer import Composer
from app.ui.context_meter import ContextMeter
from app.ui.model_bar import ModelBar
from app.ui.offload_panel import OffloadDialog

logger = logging.getLogger(__name__)

NO_MODEL_HINT = "Load a model with <b>Load…</b> at the top to begin."


class ModelController(QObject):
    """Loads, plans and unloads the model, and shows what state it is in."""

    settings_changed = Signal(object)  # Settings: a plan or template choice changed them
    model_ready = Signal(object)  # ModelFacts
    model_gone = Signal()

    def __init__(
        self,
        window: QMainWindow,
        *,
        bridge: EngineBridge,
        model_bar: ModelBar,
        crash_banner: CrashBanner,
        template_notice: TemplateNotice,
        composer: Composer,
        chat_view: ChatView,
        meter: ContextMeter,
        model_status: QLabel,
        settings: Callable[[], Settings],
    ) -> None:
        super().__init__(window)
        self._window = window
        self._bridge = bridge
        self._bar = model_bar
        self._banner = crash_banner
        self._notice = template_notice
        self._composer = composer
        self._view = chat_view
        self._meter = meter
        self._status = model_status
        self._settings = settings
        self.path: Path | None = None
        self.projector: Path | None = None  # chosen by the person; None: the one beside it
        self.offload_dialog: OffloadDialog | None = None
        self._devices: tuple[Device, ...] | None = None  # llama.cpp's devices, asked once
        model_bar.load_requested.connect(self._on_model_bar_load_requested)
        model_bar.unload_requested.connect(bridge.unload)
        model_bar.cancel_requested.connect(bridge.cancel_load)
        model_bar.plan_requested.connect(self.open_plan)
        crash_banner.reload_requested.connect(self.reload)
        template_notice.template_choice_requested.connect(
            self._on_template_notice_template_choice_requested
        )
        bridge.load_progress.connect(model_bar.show_progress)
        bridge.loaded.connect(self._on_bridge_loaded)
        bridge.load_failed.connect(self._on_bridge_load_failed)
        bridge.load_cancelled.connect(self._on_bridge_load_cancelled)
        bridge.unloaded.connect(self._on_bridge_unloaded)
        bridge.engine_crashed.connect(self._on_bridge_engine_crashed)

    def load(self, path: str | Path) -> None:
        """Load a model file (stopping a reply that is being written)."""
        if self.path is None or Path(path) != self.path:
            self.projector = None  # a projector chosen for another model does not carry over
        self.path = Path(path)
        self._bar.plan_button.setEnabled(True)
        self._banner.hide()
        self._notice.hide()
        self._bar.show_loading(self.path)
        self._composer.set_ready(False, loading=True)
        self._status.setText(f"Loading {self.path.name}…")
        self._bridge.load(self.path, self._settings().load, self.projector)

    @Slot()
    def reload(self) -> None:
        """Load the same file again (after a crash, or with new settings)."""
        if self.path is not None:
            self.load(self.path)

    @Slot()
    def choose_projector(self) -> None:
        """Ask for a vision projector (an mmproj GGUF) and reload the model with it."""
        if self.path is None:
            self._window.statusBar().showMessage("Open a model first.", 5000)
            return
        chosen, _ = QFileDialog.getOpenFileName(
            self._window,
            "Choose the vision projector (mmproj) for this model",
            str(self.path.parent),
            "Vision projectors (*.gguf);;All files (*)",
        )
        if chosen:
            self.use_projector(Path(chosen))

    def use_projector(self, projector: Path) -> None:
        """Reload the model with this vision projector."""
        if self.path is not None:
            self.projector = projector  # kept while the same model is reloaded
            self.load(self.path)

    @Slot()
    def open_plan(self) -> None:
        """Open the Offload & Context dialog for the chosen model."""
        if self.path is None:
            self._window.statusBar().showMessage("Open a model first.", 5000)
            return
        try:
            info = read_gguf(self.path)
        except HerdError as exc:
            self._bar.show_error(self.path, exc.user_message, exc.hint)
            return
        load = self._settings().load
        wishes = Wishes(n_ctx=load.n_ctx, kv_type=load.type_k)
        hardware = probe_hardware()
        if self._devices is None and not self._bridge.busy:  # busy: it would wait for the reply
            try:
                self._devices = self._bridge.client.devices()
            except HerdError as exc:
                logger.info("planning with the probed devices only: %s", exc.user_message)
        if self._devices is not None:  # llama.cpp's view of its devices wins (hardware.py)
            hardware = merge_engine_devices(hardware, self._devices)
        self.offload_dialog = OffloadDialog(info, hardware, wishes, self._window)
        self.offload_dialog.load_requested.connect(self._on_offload_dialog_load_requested)
        self.offload_dialog.open()

    def show_no_model(self, status: str = "No model loaded") -> None:
        """Nothing is loaded: the composer says how to load one."""
        self._composer.set_ready(False)
        self._window.setWindowTitle("Herd")
        self._status.setText(status)
        self._meter.set_usage(0, 0)
        self._view.set_empty_hint(NO_MODEL_HINT)

    def _change_load(self, load: LoadSettings) -> None:
        settings = dataclasses.replace(self._settings(), load=load)
        self.settings_changed.emit(settings)
        self.reload()

    @Slot(str)
    def _on_model_bar_load_requested(self, path: str) -> None:
        self.load(path)

    @Slot(object)
    def _on_offload_dialog_load_requested(self, planned: LoadSettings) -> None:
        self._change_load(dataclasses.replace(planned, template=self._settings().load.template))

    @Slot(str)
    def _on_template_notice_template_choice_requested(self, choice: str) -> None:
        self._change_load(
            dataclasses.replace(self._settings().load, template=TemplateChoice(choice))
        )

    @Slot(object)
    def _on_bridge_loaded(self, facts: ev.ModelFacts) -> None:
        self._bar.show_model(facts)
        self._meter.set_usage(0, facts.n_ctx)
        self._notice.show_warnings(
            facts.warnings, self._settings().load.template is TemplateChoice.MODEL
        )
        self._composer.set_ready(True)
        name = facts.name or Path(facts.path).stem
        self._window.setWindowTitle(f"{name} – Herd")
        self._status.setText(f"{name} loaded in {facts.load_seconds:.1f} s")
        if facts.engine_note:  # the self-check just turned a fast path off: say so, once
            self._window.statusBar().showMessage(facts.engine_note, 60_000)
        self._view.set_empty_hint("Type a message below to start.")
        self.settings_changed.emit(dataclasses.replace(self._settings(), last_model=facts.path))
        self.model_ready.emit(facts)

    @Slot(str, str)
    def _on_bridge_load_failed(self, message: str, hint: str) -> None:
        self._bar.show_error(self.path, message, hint)
        self.show_no_model(status=message)
        self.model_gone.emit()

    @Slot()
    def _on_bridge_load_cancelled(self) -> None:
        self._bar.show_none("Loading was cancelled.")
        self.show_no_model()
        self.model_gone.emit()

    @Slot()
    def _on_bridge_unloaded(self) -> None:
        self._bar.show_none()
        self.show_no_model()
        self.model_gone.emit()

    @Slot(object)
    def _on_bridge_engine_crashed(self, crash: ev.EngineCrashed) -> None:
        logger.error("engine crashed (exit code %s)", crash.exit_code)
        self._banner.show_crash(crash)
        self._bar.show_none("The engine stopped. Reload to continue.")
        self.show_no_model(status="Engine stopped")
        self.model_gone.emit()
