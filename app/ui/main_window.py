"""MainWindow: model bar, crash banner, conversation, composer and status bar."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PySide6.QtCore import QTimer, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from app.core import events as ev
from app.core.chat.budget import Fitted
from app.core.chat.messages import ChatMessage, Role
from app.core.errors import HerdError
from app.core.gguf import read_gguf
from app.core.hardware import merge_engine_devices, probe_hardware
from app.core.paths import AppPaths
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

DEFAULT_SIZE = (1000, 720)
DRAFT_COUNT_DELAY_MS = 250  # count the draft's tokens once typing pauses

class MainWindow(QMainWindow):
    """Herd's window: one conversation with the loaded model."""

    def __init__(
        self,
        paths: AppPaths,
        settings: Settings,
        *,
        bridge: EngineBridge | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._history: list[ChatMessage] = []
        self._model_path: Path | None = None
        self.offload_dialog: OffloadDialog | None = None
        self.setWindowTitle("Herd")
        self.resize(*DEFAULT_SIZE)
        self.bridge = bridge if bridge is not None else EngineBridge(paths, self)

        last = Path(settings.last_model).parent if settings.last_model else paths.models
        self.model_bar = ModelBar(last, self)
        self.banner = CrashBanner(self)
        self.template_notice = TemplateNotice(self)
        self.chat_view = ChatView(self)
        self.composer = Composer(self)
        central = QWidget(self)
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        for widget in (
            self.model_bar,
            self.banner,
            self.template_notice,
            self.chat_view,
            self.composer,
        ):
            column.addWidget(widget)
        column.setStretchFactor(self.chat_view, 1)
        self.setCentralWidget(central)

        self.model_status = QLabel(self)
        self.reply_status = QLabel(self)
        self.statusBar().setStyleSheet(
            "QStatusBar::item { border: none; } QStatusBar QLabel { padding: 0 8px; }"
        )
        self.statusBar().addWidget(self.model_status, 1)
        self.statusBar().addPermanentWidget(self.reply_status)
        self.context_meter = ContextMeter(self)
        self.statusBar().addPermanentWidget(self.context_meter)
        self._prompt_tokens = 0
        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(DRAFT_COUNT_DELAY_MS)
        self._draft_timer.timeout.connect(self._on_draft_timer_timeout)
        self._show_no_model()

        self.model_bar.load_requested.connect(self._on_model_bar_load_requested)
        self.model_bar.unload_requested.connect(self._on_model_bar_unload_requested)
        self.model_bar.cancel_requested.connect(self._on_model_bar_cancel_requested)
        self.model_bar.plan_requested.connect(self._on_model_bar_plan_requested)
        self.banner.reload_requested.connect(self._on_banner_reload_requested)
        self.template_notice.template_choice_requested.connect(
            self._on_template_notice_template_choice_requested
        )
        self.composer.send_requested.connect(self._on_composer_send_requested)
        self.composer.stop_requested.connect(self._on_composer_stop_requested)
        b = self.bridge
        b.load_progress.connect(self._on_bridge_load_progress)
        b.loaded.connect(self._on_bridge_loaded)
        b.load_failed.connect(self._on_bridge_load_failed)
        b.load_cancelled.connect(self._on_bridge_load_cancelled)
        b.unloaded.connect(self._on_bridge_unloaded)
        b.token_batch.connect(self._on_bridge_token_batch)
        b.reply_finished.connect(self._on_bridge_reply_finished)
        b.reply_failed.connect(self._on_bridge_reply_failed)
        b.engine_crashed.connect(self._on_bridge_engine_crashed)
        b.prompt_fitted.connect(self._on_bridge_prompt_fitted)
        b.tokens_streamed.connect(self._on_bridge_tokens_streamed)
        b.draft_counted.connect(self._on_bridge_draft_counted)
        self.composer.editor.textChanged.connect(self._draft_timer.start)
        self.composer.editor.setFocus()

    @property
    def settings(self) -> Settings:
        """The settings, with the last loaded model remembered."""
        return self._settings

    def apply_settings(self, settings: Settings) -> None:
        """Use new settings from the next load or reply on."""
        self._settings = settings

    @property
    def history(self) -> list[ChatMessage]:
        """The conversation as the model sees it."""
        return list(self._history)

    def load_model(self, path: str | Path) -> None:
        """Load a model file (stopping a reply that is being written)."""
        self._model_path = Path(path)
        self.model_bar.plan_button.setEnabled(True)
        self.banner.hide()
        self.template_notice.hide()
        self.model_bar.show_loading(self._model_path)
        self.composer.set_ready(False, loading=True)
        self.model_status.setText(f"Loading {self._model_path.name}…")
        self.bridge.load(self._model_path, self._settings.load)

    def send_message(self, text: str) -> None:
        """Send ``text`` as the person's next message."""
        self._history.append(ChatMessage(Role.USER, text))
        self.chat_view.add_user_message(text)
        self.chat_view.begin_reply()
        self.composer.set_generating(True)
        self.bridge.send(self._history, self._settings.sampling, self.context_meter.policy)

    def shutdown(self) -> None:
        """Stop every job and the engine (joined). Safe to call twice."""
        self.bridge.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Closing the window ends every job and the engine."""
        self.shutdown()
        super().closeEvent(event)

    # -- from the widgets ------------------------------------------------------------
    @Slot(str)
    def _on_model_bar_load_requested(self, path: str) -> None:
        self.load_model(path)

    @Slot()
    def _on_model_bar_unload_requested(self) -> None:
        self.bridge.unload()

    @Slot()
    def _on_model_bar_cancel_requested(self) -> None:
        self.bridge.cancel_load()

    @Slot()
    def _on_model_bar_plan_requested(self) -> None:
        if self._model_path is None:
            return
        try:
            info = read_gguf(self._model_path)
        except HerdError as exc:
            self.model_bar.show_error(self._model_path, exc.user_message, exc.hint)
            return
        wishes = Wishes(n_ctx=self._settings.load.n_ctx, kv_type=self._settings.load.type_k)
        hardware = probe_hardware()
        try:  # llama.cpp's own view of its devices wins over the tools' (hardware.py says why)
            hardware = merge_engine_devices(hardware, self.bridge.client.devices())
        except HerdError as exc:
            logger.info("planning with the probed devices only: %s", exc.user_message)
        self.offload_dialog = OffloadDialog(info, hardware, wishes, self)
        self.offload_dialog.load_requested.connect(self._on_offload_dialog_load_requested)
        self.offload_dialog.open()

    @Slot(object)
    def _on_offload_dialog_load_requested(self, planned: LoadSettings) -> None:
        load = dataclasses.replace(planned, template=self._settings.load.template)
        self._settings = dataclasses.replace(self._settings, load=load)
        if self._model_path is not None:
            self.load_model(self._model_path)

    @Slot()
    def _on_banner_reload_requested(self) -> None:
        if self._model_path is not None:
            self.load_model(self._model_path)

    @Slot(str)
    def _on_template_notice_template_choice_requested(self, choice: str) -> None:
        load = dataclasses.replace(self._settings.load, template=TemplateChoice(choice))
        self._settings = dataclasses.replace(self._settings, load=load)
        if self._model_path is not None:
            self.load_model(self._model_path)

    @Slot(str)
    def _on_composer_send_requested(self, text: str) -> None:
        self.send_message(text)

    @Slot()
    def _on_composer_stop_requested(self) -> None:
        self.bridge.stop()

    @Slot()
    def _on_draft_timer_timeout(self) -> None:
        draft = self.composer.text.strip()
        messages = self._history + ([ChatMessage(Role.USER, draft)] if draft else [])
        if messages:
            self.bridge.count_draft(messages)
        elif self.bridge.facts is not None:
            self.context_meter.set_usage(0, self.bridge.facts.n_ctx)

    # -- from the engine -------------------------------------------------------------
    @Slot(object)
    def _on_bridge_prompt_fitted(self, fitted: Fitted) -> None:
        self._prompt_tokens = fitted.prompt_tokens
        self.context_meter.set_usage(fitted.prompt_tokens, fitted.n_ctx)
        if fitted.dropped:
            self.statusBar().showMessage(
                f"{len(fitted.dropped)} older messages were left out so the chat fits the "
                "context.",
                8000,
            )

    @Slot(int)
    def _on_bridge_tokens_streamed(self, n_tokens: int) -> None:
        self.context_meter.set_usage(self._prompt_tokens + n_tokens, self.context_meter.total)

    @Slot(int)
    def _on_bridge_draft_counted(self, n_tokens: int) -> None:
        if self.bridge.facts is not None and not self.bridge.busy:
            self.context_meter.set_usage(n_tokens, self.bridge.facts.n_ctx)

    @Slot(float, str)
    def _on_bridge_load_progress(self, fraction: float, message: str) -> None:
        self.model_bar.show_progress(fraction, message)

    @Slot(object)
    def _on_bridge_loaded(self, facts: ev.ModelFacts) -> None:
        self.model_bar.show_model(facts)
        self.context_meter.set_usage(0, facts.n_ctx)
        self._draft_timer.start()
        self.template_notice.show_warnings(
            facts.warnings, self._settings.load.template is TemplateChoice.MODEL
        )
        self.composer.set_ready(True)
        name = facts.name or Path(facts.path).stem
        self.setWindowTitle(f"{name} – Herd")
        self.model_status.setText(f"{name} loaded in {facts.load_seconds:.1f} s")
        self.chat_view.set_empty_hint("Type a message below to start.")
        self._settings = dataclasses.replace(self._settings, last_model=facts.path)

    @Slot(str, str)
    def _on_bridge_load_failed(self, message: str, hint: str) -> None:
        self.model_bar.show_error(self._model_path, message, hint)
        self._show_no_model(status=message)

    @Slot()
    def _on_bridge_load_cancelled(self) -> None:
        self.model_bar.show_none("Loading was cancelled.")
        self._show_no_model()

    @Slot()
    def _on_bridge_unloaded(self) -> None:
        self.model_bar.show_none()
        self._show_no_model()

    @Slot(str)
    def _on_bridge_token_batch(self, text: str) -> None:
        self.chat_view.append_reply(text)

    @Slot(object)
    def _on_bridge_reply_finished(self, finished: ev.Finished) -> None:
        self.chat_view.finish_reply(finished)
        self.context_meter.set_usage(
            finished.prompt_tokens + finished.generated_tokens, self.context_meter.total
        )
        text = finished.text or self.chat_view.reply_text()
        self._history.append(ChatMessage(Role.ASSISTANT, text))
        self.composer.set_generating(False)
        self.reply_status.setText(
            f"last reply {finished.decode_tok_s:.1f} tok/s  ·  "
            f"prompt {finished.prompt_tok_s:.0f} tok/s"
        )
        self.reply_status.setToolTip(
            f"{finished.generated_tokens} tokens generated at {finished.decode_tok_s:.1f} tok/s; "
            f"prompt of {finished.prompt_tokens} tokens read at {finished.prompt_tok_s:.0f} tok/s"
        )

    @Slot(str, str)
    def _on_bridge_reply_failed(self, message: str, hint: str) -> None:
        self.chat_view.fail_reply(message, hint)
        self.composer.set_generating(False)

    @Slot(object)
    def _on_bridge_engine_crashed(self, crash: ev.EngineCrashed) -> None:
        logger.error("engine crashed (exit code %s)", crash.exit_code)
        if self.chat_view.replying:
            partial = self.chat_view.reply_text()
            self.chat_view.interrupt_reply("interrupted: the engine stopped")
            if partial:
                # the model sees what the person sees
                self._history.append(ChatMessage(Role.ASSISTANT, partial))
        self.composer.set_generating(False)
        self.banner.show_crash(crash)
        self.model_bar.show_none("The engine stopped. Reload to continue.")
        self._show_no_model(status="Engine stopped")

    def _show_no_model(self, status: str = "No model loaded") -> None:
        self.composer.set_ready(False)
        self.setWindowTitle("Herd")
        self.model_status.setText(status)
        self.context_meter.set_usage(0, 0)
        self.chat_view.set_empty_hint("Load a model with <b>Load…</b> at the top to begin.")
