"""ModelController: the loaded model's life in the window (load, plan, unload, crash).

It turns the bridge's model events into what the model bar, the banners, the composer and
the status bar show, and it owns the "Offload & Context" dialog.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow

from app.core import events as ev
from app.core.demo import DEMO_NAME, is_demo
from app.core.errors import HerdError
from app.core.first_run import outlook
from app.core.gguf.info import read_gguf
from app.core.hardware.probe import probe_hardware
from app.core.load import LoadRequest, Planned, summary
from app.core.model_wishes import ModelWishes, WishStore
from app.core.paths import AppPaths
from app.core.plan.planner import Wishes
from app.core.settings import LoadSettings, Settings, TemplateChoice
from app.ui.banners import CrashBanner, TemplateNotice
from app.ui.bridge import EngineBridge
from app.ui.chat.chat_view import ChatView
from app.ui.chat.composer import Composer
from app.ui.chat.context_meter import ContextMeter
from app.ui.models.model_bar import ModelBar
from app.ui.models.welcome import demo_hint
from app.ui.offload.offload_panel import OffloadDialog
from app.ui.offload.probe_dialog import ProbeSetup

logger = logging.getLogger(__name__)

NO_MODEL_HINT = "Load a model with <b>Load…</b> at the top to begin."


class ModelController(QObject):
    """Loads, plans and unloads the model, and shows what state it is in."""

    settings_changed = Signal(object)  # Settings: a plan or template choice changed them
    model_ready = Signal(object)  # ModelFacts
    model_gone = Signal()
    get_model_requested = Signal(str)  # open the Model Manager on a repository ("": catalog)

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
        wishes: WishStore,
        paths: AppPaths | None = None,
    ) -> None:
        super().__init__(window)
        self._paths = paths  # for "Test this context…" (None: no such button)
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
        self.wishes = wishes  # every model's own wishes (context, KV, experts, projector)
        self.path: Path | None = None
        self.planned: Planned | None = None  # the plan of the last load
        self.offload_dialog: OffloadDialog | None = None
        model_bar.load_requested.connect(self._on_model_bar_load_requested)
        model_bar.unload_requested.connect(bridge.unload)
        model_bar.cancel_requested.connect(bridge.cancel_load)
        model_bar.plan_requested.connect(self.open_plan)
        crash_banner.reload_requested.connect(self.reload)
        template_notice.template_choice_requested.connect(
            self._on_template_notice_template_choice_requested
        )
        bridge.load_progress.connect(model_bar.show_progress)
        bridge.planned.connect(self._on_bridge_planned)
        bridge.loaded.connect(self._on_bridge_loaded)
        bridge.load_failed.connect(self._on_bridge_load_failed)
        bridge.load_cancelled.connect(self._on_bridge_load_cancelled)
        bridge.unloaded.connect(self._on_bridge_unloaded)
        bridge.engine_crashed.connect(self._on_bridge_engine_crashed)

    @property
    def projector(self) -> Path | None:
        """The vision projector chosen for this model (None: the mmproj beside it)."""
        chosen = self.wishes.get(self.path).projector if self.path else ""
        return Path(chosen) if chosen else None

    def load(self, path: str | Path) -> None:
        """Load a model file with its own wishes, through the plan (stopping a reply)."""
        self.path = Path(path)
        self.planned = None
        self._bar.plan_button.setEnabled(True)
        self._banner.hide()
        self._notice.hide()
        self._bar.show_loading(self.path)
        self._bar.show_plan("")
        self._composer.set_ready(False, loading=True)
        self._status.setText(f"Loading {self.path.name}…")
        self._view.set_empty_hint(f"Loading {html.escape(self.path.name)}…")
        request = LoadRequest(self.path, self.wishes.get(self.path), base=self._settings().load)
        self._bridge.load(request)

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
        """Reload the model with this vision projector (kept with this model)."""
        if self.path is not None:
            wishes = dataclasses.replace(self.wishes.get(self.path), projector=str(projector))
            self._keep_wishes(wishes)
            self.load(self.path)

    def _keep_wishes(self, wishes: ModelWishes) -> None:
        assert self.path is not None
        try:
            self.wishes.set(self.path, wishes)
        except OSError as exc:  # still used for this load; said, not fatal
            self._window.statusBar().showMessage(f"Could not save the model's settings: {exc}")

    @Slot()
    def open_plan(self) -> None:
        """Open the Offload & Context dialog: this model's wishes, on the load's machine."""
        if self.path is None:
            self._window.statusBar().showMessage("Open a model first.", 5000)
            return
        if self.planned is not None:  # what the load job read and saw, off this thread
            info, hardware = self.planned.info, self.planned.hardware
        else:  # no load got as far as a plan (a bad file): read it here, say why not
            try:
                info = read_gguf(self.path)
            except HerdError as exc:
                self._bar.show_error(self.path, exc.user_message, exc.hint)
                return
            hardware = probe_hardware()
        wishes = self.wishes.get(self.path).planner_wishes()
        loaded = self._bridge.facts is not None and self.planned is not None
        in_use = summary(self.planned.plan) if loaded and self.planned else ""
        probe = ProbeSetup(self._paths, self._settings().load) if self._paths else None
        self.offload_dialog = OffloadDialog(
            info, hardware, wishes, self._window, in_use=in_use, probe=probe
        )
        self.offload_dialog.load_requested.connect(self._on_offload_dialog_load_requested)
        self.offload_dialog.panel.workers_list.set_endpoints(self._settings().load.rpc_servers)
        self.offload_dialog.open()

    def show_no_model(self, status: str = "No model loaded") -> None:
        """Nothing is loaded: the composer says how to load one."""
        self._composer.set_ready(False)
        if self._composer.image_panel is not None:
            self._composer.image_panel.set_enabled_reason(False, "Load a model first.")
        self._window.setWindowTitle("Herd")
        self._status.setText(status)
        self._meter.set_usage(0, 0)
        self._view.set_empty_hint(NO_MODEL_HINT)
        self._view.set_can_reply(False)

    def _change_load(self, load: LoadSettings) -> None:
        settings = dataclasses.replace(self._settings(), load=load)
        self.settings_changed.emit(settings)
        self.reload()

    @Slot(str)
    def _on_model_bar_load_requested(self, path: str) -> None:
        self.load(path)

    @Slot(object)
    def _on_offload_dialog_load_requested(self, wishes: Wishes) -> None:
        if self.path is None:
            return
        kept = self.wishes.get(self.path)
        self._keep_wishes(
            ModelWishes(
                n_ctx=wishes.n_ctx,
                kv_type=wishes.kv_type,
                gpu_expert_layers=wishes.gpu_expert_layers,
                flash_attn=wishes.flash_attn,
                allow_disk=wishes.allow_disk,
                projector=kept.projector,
            )
        )
        if self.offload_dialog is not None:  # the Workers list: kept for every load
            workers = self.offload_dialog.panel.workers_list.endpoints
            if workers != self._settings().load.rpc_servers:
                load = dataclasses.replace(self._settings().load, rpc_servers=workers)
                self.settings_changed.emit(dataclasses.replace(self._settings(), load=load))
        self.reload()

    @Slot(object)
    def _on_bridge_planned(self, planned: Planned) -> None:
        self.planned = planned
        self._bar.show_plan(summary(planned.plan))

    @Slot(str)
    def _on_template_notice_template_choice_requested(self, choice: str) -> None:
        self._change_load(
            dataclasses.replace(self._settings().load, template=TemplateChoice(choice))
        )

    @Slot(object)
    def _on_bridge_loaded(self, facts: ev.ModelFacts) -> None:
        self._bar.show_model(facts, self.planned.info.file_size if self.planned else 0)
        if self.planned is not None:
            self._bar.show_plan(summary(self.planned.plan), facts.plan_notes)
        self._meter.set_usage(0, facts.n_ctx)
        self._notice.show_warnings(
            facts.warnings, self._settings().load.template is TemplateChoice.MODEL
        )
        self._composer.set_ready(True)
        self._view.set_can_reply(True)
        if self._composer.image_panel is not None:
            reason = facts.vision_error or (
                "This model has no vision projector: put its mmproj*.gguf next to the model "
                "file, or choose one in Model > Choose vision projector…, to send images."
            )
            panel = self._composer.image_panel
            panel.set_enabled_reason(facts.vision, "" if facts.vision else reason)
        name = facts.name or Path(facts.path).stem
        if is_demo(facts.path):
            name = f"The demo model ({DEMO_NAME})"
        self._window.setWindowTitle(f"{name} – Herd")
        self._status.setText(f"{name} loaded in {facts.load_seconds:.1f} s")
        if facts.engine_note:  # the self-check just turned a fast path off: say so, once
            self._window.statusBar().showMessage(facts.engine_note, 60_000)
        else:
            self._window.statusBar().clearMessage()  # e.g. "Checking how llama.cpp runs…"
        if is_demo(facts.path):  # the first run: say so, and what to get instead
            hardware = self.planned.hardware if self.planned else probe_hardware()
            self._view.set_empty_hint(*demo_hint(outlook(hardware), self.get_model_requested.emit))
        else:
            self._view.set_empty_hint("Type a message below to start.")
        self.settings_changed.emit(dataclasses.replace(self._settings(), last_model=facts.path))
        self.model_ready.emit(facts)

    @Slot(str, str)
    def _on_bridge_load_failed(self, message: str, hint: str) -> None:
        # the error banner below says what and why (with the log); the bar keeps the state
        self._bar.show_error(self.path, "It was not loaded; the message below says why.", "")
        self._window.statusBar().clearMessage()  # e.g. "Checking how llama.cpp runs…"
        self.show_no_model(status="Not loaded")
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
        self._banner.show_crash(crash, str(self._bridge.client.log_path))
        self._bar.show_none("The engine stopped. Reload to continue.")
        self.show_no_model(status="Engine stopped")
        self.model_gone.emit()
