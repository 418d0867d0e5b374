"""ConversationSidebar: every saved chat, newest activity first, with search and actions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.chat.store_schema import Conversation

SEARCH_DELAY_MS = 200
ID_ROLE = Qt.ItemDataRole.UserRole
WIDTH = 250


def when(timestamp: float, now: float | None = None) -> str:
    """A short, friendly time: "now", "5 min", "14:02", "Mon", "3 Mar", "3 Mar 2024"."""
    now = time.time() if now is None else now
    seconds = now - timestamp
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    then, today = datetime.fromtimestamp(timestamp), datetime.fromtimestamp(now)
    if then.date() == today.date():
        return then.strftime("%H:%M")
    if seconds < 6 * 86400:
        return then.strftime("%a")
    if then.year == today.year:
        return f"{then.day} {then.strftime('%b')}"
    return f"{then.day} {then.strftime('%b %Y')}"


def ask_export_target(parent: QWidget, name: str) -> Path | None:
    """Ask where to export a chat, suggesting ``name`` (``.md`` or ``.json``) in the home folder."""
    kind = "JSON (*.json)" if name.endswith(".json") else "Markdown (*.md)"
    chosen, _ = QFileDialog.getSaveFileName(parent, "Export chat", str(Path.home() / name), kind)
    return Path(chosen) if chosen else None


class ConversationSidebar(QFrame):
    """The list of conversations on the left of the window."""

    new_requested = Signal()
    conversation_selected = Signal(int)
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    export_requested = Signal(int, str)  # conversation id, "md" or "json"
    search_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sidebar")
        self.setFixedWidth(WIDTH)
        self.setStyleSheet(
            "#sidebar { border-right: 1px solid palette(mid); }"
            "#sidebar QListWidget { border: none; background: transparent; }"
            "#sidebar QListWidget::item { padding: 7px 8px; border-radius: 6px; }"
            "#sidebar QListWidget::item:selected { background: palette(highlight);"
            " color: palette(highlighted-text); }"
            "#sidebar QListWidget::item:hover:!selected { background: palette(midlight); }"
        )
        column = QVBoxLayout(self)
        column.setContentsMargins(10, 10, 10, 10)
        column.setSpacing(8)
        self.new_button = QPushButton("+  New chat", self)
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_requested)
        column.addWidget(self.new_button)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search chats  (Ctrl+K)")
        self.search.setClearButtonEnabled(True)
        column.addWidget(self.search)
        self.list = QListWidget(self)
        self.list.setObjectName("conversationList")
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setUniformItemSizes(True)
        column.addWidget(self.list, 1)
        self.empty_label = QLabel("No conversations yet.", self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setStyleSheet("color: palette(placeholder-text);")
        self.empty_label.setWordWrap(True)
        column.addWidget(self.empty_label)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._on_search_timer_timeout)
        self.search.textChanged.connect(self._search_timer.start)
        self.list.currentItemChanged.connect(self._on_list_current_item_changed)
        self.list.customContextMenuRequested.connect(self._on_list_context_menu_requested)
        self.list.itemDoubleClicked.connect(self._on_list_item_double_clicked)
        delete = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self._on_delete_shortcut_activated)
        rename = QShortcut(QKeySequence(Qt.Key.Key_F2), self.list)
        rename.setContext(Qt.ShortcutContext.WidgetShortcut)
        rename.activated.connect(self._on_rename_shortcut_activated)
        self._updating = False

    @property
    def query(self) -> str:
        """The search text."""
        return self.search.text().strip()

    @property
    def ids(self) -> list[int]:
        """Conversation ids in the order shown."""
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())]

    def current_id(self) -> int | None:
        """The selected conversation's id."""
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item is not None else None

    def set_conversations(self, conversations: Sequence[Conversation], current: int | None) -> None:
        """Show ``conversations`` (already sorted) with ``current`` selected."""
        self._updating = True
        try:
            self.list.clear()
            now = time.time()
            for conversation in conversations:
                item = QListWidgetItem(conversation.title)
                item.setData(ID_ROLE, conversation.id)
                active = when(conversation.updated_at, now)
                item.setToolTip(f"{conversation.title}\nlast active: {active}")
                self.list.addItem(item)
                if conversation.id == current:
                    self.list.setCurrentItem(item)
            if current is None:
                self.list.setCurrentRow(-1)
        finally:
            self._updating = False
        if self.query:
            self.empty_label.setText(f"No chat mentions “{self.query}”.")
        else:
            self.empty_label.setText("No conversations yet.\nYour chats are saved here.")
        self.empty_label.setVisible(not conversations)

    def focus_search(self) -> None:
        """Put the cursor in the search box (Ctrl+K)."""
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def ask_rename(self, conversation_id: int) -> None:
        """Ask for a new title and emit ``rename_requested``."""
        item = self._item(conversation_id)
        if item is None:
            return
        title, ok = QInputDialog.getText(
            self, "Rename chat", "Title:", QLineEdit.EchoMode.Normal, item.text()
        )
        if ok and title.strip():
            self.rename_requested.emit(conversation_id, title.strip())

    def _item(self, conversation_id: int) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(ID_ROLE) == conversation_id:
                return self.list.item(i)
        return None

    @Slot()
    def _on_search_timer_timeout(self) -> None:
        self.search_changed.emit(self.query)

    @Slot(object, object)
    def _on_list_current_item_changed(self, current: QListWidgetItem | None, _prev: object) -> None:
        if not self._updating and current is not None:
            self.conversation_selected.emit(current.data(ID_ROLE))

    @Slot(QListWidgetItem)
    def _on_list_item_double_clicked(self, item: QListWidgetItem) -> None:
        self.ask_rename(item.data(ID_ROLE))

    @Slot()
    def _on_delete_shortcut_activated(self) -> None:
        current = self.current_id()
        if current is not None:
            self.delete_requested.emit(current)

    @Slot()
    def _on_rename_shortcut_activated(self) -> None:
        current = self.current_id()
        if current is not None:
            self.ask_rename(current)

    @Slot(QPoint)
    def _on_list_context_menu_requested(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        menu = self.context_menu(item.data(ID_ROLE))
        menu.exec(self.list.viewport().mapToGlobal(pos))
        menu.deleteLater()

    def context_menu(self, conversation_id: int) -> QMenu:
        """The actions for one conversation (Rename, Export, Delete)."""
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.ask_rename(conversation_id)).setShortcut("F2")
        menu.addAction(
            "Export as Markdown…", lambda: self.export_requested.emit(conversation_id, "md")
        )
        menu.addAction(
            "Export as JSON…", lambda: self.export_requested.emit(conversation_id, "json")
        )
        menu.addSeparator()
        remove = menu.addAction("Delete", lambda: self.delete_requested.emit(conversation_id))
        remove.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        return menu
