"""The main window's menu bar and its shortcuts (Ctrl+N, Ctrl+K, Esc, ...)."""

# ruff: noqa: D102 - MenuHost's methods are the window's, documented there

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar

from app.ui.models.quantize_dialog import open_quantize_dialog

if TYPE_CHECKING:
    from app.ui.bridge import EngineBridge
    from app.ui.chat.conversations import ConversationController
    from app.ui.chat.sampling_panel import SamplingPanel
    from app.ui.chat.sidebar import ConversationSidebar
    from app.ui.models.model_bar import ModelBar
    from app.ui.models.model_controller import ModelController


class MenuHost(Protocol):
    """What the menus act on: the main window, described by what it offers (no import of it)."""

    conversations: ConversationController
    sidebar: ConversationSidebar
    sampling_panel: SamplingPanel
    model_bar: ModelBar
    models: ModelController
    bridge: EngineBridge

    def menuBar(self) -> QMenuBar: ...
    def addAction(self, action: QAction) -> None: ...
    def close(self) -> bool: ...
    def export_open_chat(self, fmt: str) -> None: ...
    def open_model_manager(self) -> Any: ...
    def open_settings(self) -> Any: ...
    def open_system_prompt(self) -> Any: ...
    def stop_reply(self) -> None: ...


def _add(
    menu: QMenu,
    text: str,
    slot: Callable[[], object],
    shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
) -> QAction:
    action = menu.addAction(text)
    action.triggered.connect(lambda _checked=False: slot())
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    return action


def build_menus(window: MenuHost) -> None:
    """Chat, Model and Settings menus, and Esc to stop a reply from anywhere in the window."""
    bar = window.menuBar()
    chat = bar.addMenu("&Chat")
    _add(chat, "&New chat", window.conversations.new_chat, QKeySequence.StandardKey.New)
    _add(chat, "&Search chats", window.sidebar.focus_search, "Ctrl+K")
    chat.addSeparator()
    conversations = window.conversations
    more = _add(chat, "C&ontinue reply", conversations.continue_reply)
    more.setToolTip("Write more of the last reply, from where it stopped")
    chat.aboutToShow.connect(lambda: more.setEnabled(conversations.can_continue()))
    chat.addAction(window.sampling_panel.toggle_action)
    chat.addSeparator()
    _add(chat, "Export as &Markdown…", lambda: window.export_open_chat("md"), "Ctrl+Shift+E")
    _add(chat, "Export as &JSON…", lambda: window.export_open_chat("json"))
    chat.addSeparator()
    _add(chat, "&Quit", window.close, QKeySequence.StandardKey.Quit)
    model = bar.addMenu("&Model")
    _add(model, "&Open model file…", window.model_bar.ask_for_file, "Ctrl+O")
    _add(model, "&Download models…", window.open_model_manager, "Ctrl+Shift+M")
    _add(model, "Offload && &Context…", window.models.open_plan)
    _add(model, "Choose &vision projector…", window.models.choose_projector)
    bar_, models = window.model_bar, window.models  # the result joins the library (remember)
    _add(model, "&Quantize…", lambda: open_quantize_dialog(bar_, models.path, bar_.remember))
    _add(model, "&Unload", window.bridge.unload)
    settings = bar.addMenu("&Settings")
    _add(settings, "&Preferences…", window.open_settings, "Ctrl+,")
    _add(settings, "System prompt for this chat…", window.open_system_prompt)

    stop = QAction("Stop reply", window)  # type: ignore[call-overload]  # a QMainWindow
    stop.setShortcut(QKeySequence(Qt.Key.Key_Escape))
    stop.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    stop.triggered.connect(window.stop_reply)
    stop.setEnabled(False)  # Esc stays free for dialogs and the inline editor otherwise
    bridge = window.bridge
    bridge.busy_changed.connect(lambda _busy: stop.setEnabled(bridge.generating))
    window.addAction(stop)
