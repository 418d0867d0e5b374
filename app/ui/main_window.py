"""MainWindow: sidebar of chats, model bar, banners, transcript, composer and status bar.

The window builds the widgets and owns the model's life (load, plan, unload, crash). The
conversation flow (send, stream, save, regenerate, edit, delete, export) lives in
:class:`~app.ui.chat.conversations.ConversationController`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QWidget

from app.core import events as ev
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.presets import PresetStore
from app.core.chat.session import ChatSession, open_history
from app.core.chat.store import ChatStore
from app.core.errors import HerdError
from app.core.hub import library
from app.core.hub.service import HubService
from app.core.model_wishes import WISHES_FILE, WishStore
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.ui.banners import CrashBanner, ErrorBanner, TemplateNotice, UndoBanner
from app.ui.bridge import EngineBridge
from app.ui.chat.chat_header import ChatHeader, SystemPromptDialog
from app.ui.chat.chat_view import ChatView
from app.ui.chat.composer import Composer
from app.ui.chat.context_meter import ContextMeter
from app.ui.chat.conversations import ConversationController
from app.ui.chat.meter_controller import MeterController
from app.ui.chat.sampling_panel import SamplingPanel
from app.ui.chat.sidebar import ConversationSidebar
from app.ui.chat.window_layout import WindowState, build_central
from app.ui.menus import build_menus
from app.ui.models.download_status import DownloadStatus
from app.ui.models.hub_bridge import HubBridge
from app.ui.models.model_bar import ModelBar, library_menu_items
from app.ui.models.model_controller import ModelController
from app.ui.models.model_manager import ModelManagerDialog
from app.ui.offload.offload_panel import OffloadDialog
from app.ui.server_switch import LocalServerController
from app.ui.settings.engine_page import EnginePage
from app.ui.settings.settings_dialog import SettingsDialog

logger = logging.getLogger(__name__)

DEFAULT_SIZE = (1180, 760)


class MainWindow(QMainWindow):
    """Herd's window."""

    def __init__(
        self,
        paths: AppPaths,
        settings: Settings,
        *,
        bridge: EngineBridge | None = None,
        parent: QWidget | None = None,
        history: tuple[ChatStore, str] | None = None,
    ) -> None:
        super().__init__(parent)
        self._paths = paths
        self._settings = settings
        self._closed = False
        self._hub: HubBridge | None = None
        self.setWindowTitle("Herd")
        self.resize(*DEFAULT_SIZE)
        self.setAcceptDrops(True)
        self.bridge = bridge if bridge is not None else EngineBridge(paths, self)
        self.store, store_note = history if history is not None else open_history(paths.chats_db)
        self.presets = PresetStore(paths.config / "presets.json")

        last = Path(settings.last_model).parent if settings.last_model else paths.models
        self.sidebar = ConversationSidebar(self)
        self.model_bar = ModelBar(last, self)
        self.banner = CrashBanner(self)
        self.error_banner = ErrorBanner(self)  # the one place errors are shown
        self.template_notice = TemplateNotice(self)
        self.undo_banner = UndoBanner(self)
        self.chat_header = ChatHeader(self)
        self.chat_view = ChatView(self)
        self.composer = Composer(self, paths=paths)
        self.sampling_panel = SamplingPanel(self)
        self.chat_header.add_toggle(self.sampling_panel.toggle_action)
        self.splitter = build_central(
            self,
            sidebar=self.sidebar,
            top=(self.model_bar, self.error_banner, self.banner, self.template_notice),
            column=(self.undo_banner, self.chat_header, self.chat_view, self.composer),
            stretch=self.chat_view,
            panel=self.sampling_panel,
        )
        self.window_state = WindowState(self, self.splitter, self.sampling_panel, self.store)
        self._build_status_bar()
        self.conversations = ConversationController(
            ChatSession(self.store),
            paths=paths,
            bridge=self.bridge,
            sidebar=self.sidebar,
            chat_view=self.chat_view,
            composer=self.composer,
            meter=self.context_meter,
            undo_banner=self.undo_banner,
            sampling_panel=self.sampling_panel,
            sampling=lambda: self._settings.sampling,
            system_prompt=self.system_prompt,
            parent=self,
            report=self.show_error,
        )
        self.models = ModelController(
            self,
            bridge=self.bridge,
            model_bar=self.model_bar,
            crash_banner=self.banner,
            template_notice=self.template_notice,
            composer=self.composer,
            chat_view=self.chat_view,
            meter=self.context_meter,
            model_status=self.model_status,
            settings=lambda: self._settings,
            wishes=WishStore(paths.config / WISHES_FILE),
            paths=paths,
        )
        self.models.settings_changed.connect(self.apply_settings)
        say = self.statusBar().showMessage
        self.server = LocalServerController(self.bridge, self, report=self.show_error, say=say)
        self.statusBar().insertPermanentWidget(1, self.server.label)  # after the model's
        self.server.settings_requested.connect(self.open_settings)
        self.models.model_ready.connect(self._on_models_model_ready)
        build_menus(self)
        self.meter = MeterController(
            self,
            bridge=self.bridge,
            conversations=self.conversations,
            composer=self.composer,
            meter=self.context_meter,
            system_prompt=self.system_prompt,
            say=self.statusBar().showMessage,
        )
        self._connect()
        self.models.show_no_model()
        self.refresh_library()
        self.conversations.clean_up()
        self.conversations.restore()
        self.window_state.restore()
        if store_note:
            self.statusBar().showMessage(store_note, 20_000)
        self.server.apply(settings)  # the local server, if it was left on
        self.composer.editor.setFocus()

    @Slot(object)
    def _on_engine_page_checked(self, _record: object) -> None:
        self.bridge.client.check = None  # the next load reads the new verdict

    @Slot(str)
    def _on_bridge_notice(self, message: str) -> None:
        self.statusBar().showMessage(message, 60_000)

    # -- building --------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        self.model_status = QLabel(self)
        self.reply_status = QLabel(self)
        self.statusBar().setStyleSheet(
            "QStatusBar::item { border: none; } QStatusBar QLabel { padding: 0 8px; }"
        )
        self.statusBar().addWidget(self.model_status, 1)
        self.download_status = DownloadStatus(self)
        self.statusBar().addPermanentWidget(self.download_status)
        self.statusBar().addPermanentWidget(self.reply_status)
        self.context_meter = ContextMeter(self)
        self.statusBar().addPermanentWidget(self.context_meter)

    def _connect(self) -> None:
        self.bridge.notice.connect(self._on_bridge_notice)
        self.bridge.failed.connect(self.show_error)
        self.model_bar.file_opened.connect(self._on_model_bar_file_opened)
        self.model_bar.manager_requested.connect(self.open_model_manager)
        self.models.get_model_requested.connect(self.open_model_manager)
        self.chat_header.system_prompt_requested.connect(self.open_system_prompt)
        self.conversations.conversation_changed.connect(self._on_conversations_conversation_changed)
        if self.composer.image_panel is not None:
            self.composer.image_panel.image_rejected.connect(self._on_image_panel_image_rejected)
        self.composer.send_requested.connect(self._on_composer_send_requested)
        self.composer.stop_requested.connect(self.stop_reply)
        self.bridge.reply_finished.connect(self._on_bridge_reply_finished)

    # -- public ----------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """The settings, with the last loaded model remembered."""
        return self._settings

    def apply_settings(self, settings: Settings) -> None:
        """Use new settings from the next load or reply on, and save them at once."""
        changed = settings != self._settings
        self._settings = settings
        self.conversations.show_sampling()  # a chat on the defaults shows the new ones
        self.server.apply(settings)
        if changed:  # saved on change (atomically), so a crash never loses one
            try:
                settings.save_to(self._paths.config / "settings.json")
            except OSError as exc:
                logger.warning("could not save settings: %s", exc)
                self.statusBar().showMessage(f"Could not save the settings: {exc}", 15_000)

    def system_prompt(self) -> str:
        """The system prompt a new conversation starts with (the default preset's)."""
        return self.presets.text_for(self._settings.default_preset_id)

    def open_settings(self) -> SettingsDialog:
        """Open the Settings dialog (sampling, system prompts, appearance)."""
        engine = EnginePage(self._paths)
        engine.checked.connect(self._on_engine_page_checked)
        dialog = SettingsDialog(self._settings, self.presets, self, engine_page=engine)
        dialog.settings_applied.connect(self.apply_settings)
        dialog.server_page.set_status(self.server.describe())
        self.server.state_changed.connect(dialog.server_page.set_status)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def open_system_prompt(self) -> SystemPromptDialog:
        """Edit the open conversation's own system prompt."""
        conversation = self.conversations.session.conversation
        current = conversation.system_prompt if conversation else self.system_prompt()
        dialog = SystemPromptDialog(current, self.presets, self)
        dialog.accepted.connect(lambda: self.conversations.set_system_prompt(dialog.text))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    @property
    def history(self) -> list[ChatMessage]:
        """The open conversation as the model sees it (without the system prompt)."""
        messages, _ = self.conversations.session.prompt()
        return [m for m in messages if m.role is not Role.SYSTEM]

    def load_model(self, path: str | Path) -> None:
        """Load a model file (stopping a reply that is being written)."""
        self.models.load(path)

    @property
    def offload_dialog(self) -> OffloadDialog | None:
        """The Offload & Context dialog, once opened."""
        return self.models.offload_dialog

    def send_message(self, text: str, images: tuple[str, ...] = ()) -> bool:
        """Send ``text`` (and image refs or paths) as the person's next message."""
        return self.conversations.send(text, images)

    def shutdown(self) -> None:
        """Stop every job and the engine (joined), save the window. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.meter.stop()
        self.conversations.close()
        self.server.shutdown()  # joined; before the engine it serves
        self.bridge.shutdown()
        if self.composer.image_panel is not None:
            self.composer.image_panel.shutdown()  # joins its checking threads
        if self._hub is not None:
            self._hub.shutdown()
        if self.conversations.session.replying:
            self.conversations.session.interrupt_reply()
        self.window_state.save()
        self.store.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Closing the window ends every job and the engine."""
        self.shutdown()
        super().closeEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        """Accept dragged files: a .gguf model, or images for the message."""
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        """A dropped .gguf joins the library and is loaded; other files are attached."""
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        models = [f for f in files if f.lower().endswith(".gguf")]
        if models:
            self.model_bar.remember(models[0])
            self.load_model(models[0])
        others = [f for f in files if not f.lower().endswith(".gguf")]
        if others and self.composer.image_panel is not None:
            self.composer.image_panel.add_paths(others)
        event.acceptProposedAction()

    def refresh_library(self) -> None:
        """List the local models in the Load menu (most recently used first)."""
        self.model_bar.set_library(library_menu_items(self._paths))

    def open_model_manager(self, repo_id: str = "") -> ModelManagerDialog:
        """Open the Model Manager (on ``repo_id`` if given); downloads outlive it."""
        if self._hub is None:
            service = HubService(self._paths, environ=dict(os.environ))
            self._hub = HubBridge(service, self)
            self.download_status.attach(self._hub)
            self.download_status.model_downloaded.connect(lambda _path: self.refresh_library())
        dialog = ModelManagerDialog(self._paths, self, bridge=self._hub)
        dialog.model_chosen.connect(self.load_model)
        dialog.finished.connect(self.refresh_library)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        dialog.show_repo(repo_id)
        return dialog

    @Slot(str)
    def _on_model_bar_file_opened(self, path: str) -> None:
        if not Path(path).resolve().is_relative_to(self._paths.hub_cache.resolve()):
            try:
                library.add_file(self._paths, Path(path))
            except (HerdError, OSError) as exc:
                logger.warning("could not add %s to the library: %s", path, exc)
        self.refresh_library()

    def export_open_chat(self, fmt: str) -> None:
        """Export the open conversation (``md`` or ``json``), asking where."""
        conversation_id = self.conversations.session.conversation_id
        if conversation_id is None:
            self.statusBar().showMessage("Nothing to export yet: this chat is empty.", 5000)
            return
        self.conversations.export(conversation_id, fmt)

    # -- from the widgets ------------------------------------------------------------
    @Slot(str)
    def _on_composer_send_requested(self, text: str) -> None:
        refs: tuple[str, ...] = ()
        panel = self.composer.image_panel
        if panel is not None and panel.images:
            try:
                refs = panel.store_all()  # copied into the data folder, named by sha256
            except HerdError as exc:
                self._on_image_panel_image_rejected(exc.user_message, exc.hint)
                return  # the draft stays as it is
        if self.send_message(text, refs):
            self.composer.clear()

    @Slot(str, str)
    def _on_image_panel_image_rejected(self, message: str, hint: str) -> None:
        self.error_banner.show_error(message, hint)

    def show_error(self, error: HerdError | ev.Failed) -> None:
        """Show an error in the error banner (message, hint, Copy, Open log)."""
        if isinstance(error, HerdError):
            self.error_banner.show_error(error.user_message, error.hint, error.log_path)
        else:
            self.error_banner.show_error(error.message, error.hint, error.log_path)

    @Slot()
    def _on_conversations_conversation_changed(self) -> None:
        conversation = self.conversations.session.conversation
        if conversation is None:
            self.chat_header.set_conversation("New chat", self.system_prompt())
        else:
            self.chat_header.set_conversation(conversation.title, conversation.system_prompt)

    @Slot()
    def stop_reply(self) -> None:
        """Stop the reply being written (Esc, the Stop button)."""
        self.bridge.stop()

    @Slot(object)
    def _on_models_model_ready(self, facts: ev.ModelFacts) -> None:
        self.meter.recount()
        try:
            library.record_use(self._paths, Path(facts.path))
        except OSError as exc:
            logger.warning("could not note the model's use: %s", exc)
        self.refresh_library()

    @Slot(object)
    def _on_bridge_reply_finished(self, finished: ev.Finished) -> None:
        self.reply_status.setText(
            f"last reply {finished.decode_tok_s:.1f} tok/s  ·  "
            f"prompt {finished.prompt_tok_s:.0f} tok/s"
        )
        self.reply_status.setToolTip(
            f"{finished.generated_tokens} tokens generated at {finished.decode_tok_s:.1f} tok/s; "
            f"prompt of {finished.prompt_tokens} tokens read at {finished.prompt_tok_s:.0f} tok/s"
        )
