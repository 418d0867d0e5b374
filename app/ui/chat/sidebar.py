"""ConversationSidebar: every saved chat, newest activity first, with search and actions.

The chats are grouped under Today, Yesterday, Previous 7 days and Earlier (by their last
activity); each row shows its title and, in small text, when it was last active. The
headings are rows that cannot be selected; :attr:`ConversationSidebar.ids` lists only chats.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QFont, QFontMetrics, QKeySequence, QPainter, QPalette, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from app.core.chat.activity import activity_label, activity_tooltip, group_by_activity
from app.core.chat.store_schema import Conversation

SEARCH_DELAY_MS = 200
ID_ROLE = Qt.ItemDataRole.UserRole  # a chat's id; None on a heading
WHEN_ROLE = Qt.ItemDataRole.UserRole + 1  # the small date or time on a chat's row
WIDTH = 250  # at first; the splitter beside it lets the person choose (and it is kept)
MIN_WIDTH, MAX_WIDTH = 180, 520
SMALL = 0.85  # the date's size, of the list's font
HEADING_TOP_PX = 10  # space above a heading: the groups stand apart


class ConversationRowDelegate(QStyledItemDelegate):
    """Paints a chat's row and a group's heading.

    A row: its title, and the date right-aligned in small, muted text. A heading: small,
    bold and muted, with space above it.
    """

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        """Draw a heading, or a row with its date beside the elided title."""
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        left, right = Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignRight
        middle = Qt.AlignmentFlag.AlignVCenter
        painter.save()
        if index.data(ID_ROLE) is None:
            painter.setFont(_heading_font(opt.font))
            painter.setPen(opt.palette.color(QPalette.ColorRole.PlaceholderText))
            box = opt.rect.adjusted(8, HEADING_TOP_PX, -8, -2)
            painter.drawText(box, left | Qt.AlignmentFlag.AlignBottom, opt.text)
            painter.restore()
            return
        title, opt.text = opt.text, ""
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        text_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        when = str(index.data(WHEN_ROLE) or "")
        painter.setFont(_small_font(opt.font))
        role = QPalette.ColorRole
        painter.setPen(
            opt.palette.color(role.HighlightedText if selected else role.PlaceholderText)
        )
        painter.drawText(text_rect, right | middle, when)
        room = text_rect.width() - painter.fontMetrics().horizontalAdvance(when) - 8
        painter.setFont(opt.font)
        painter.setPen(opt.palette.color(role.HighlightedText if selected else role.Text))
        elided = painter.fontMetrics().elidedText(title, Qt.TextElideMode.ElideRight, room)
        painter.drawText(text_rect, left | middle, elided)
        painter.restore()

    def sizeHint(  # noqa: N802 - Qt override
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        """A heading is its small line and the space above it; a row is as usual."""
        size = super().sizeHint(option, index)
        if index.data(ID_ROLE) is None:
            size.setHeight(QFontMetrics(_heading_font(option.font)).height() + HEADING_TOP_PX + 4)
        return size


def _small_font(base: QFont) -> QFont:
    font = QFont(base)
    font.setPointSizeF(max(6.0, base.pointSizeF() * SMALL))
    return font


def _heading_font(base: QFont) -> QFont:
    font = _small_font(base)
    font.setBold(True)
    return font


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
        self.setMinimumWidth(MIN_WIDTH)
        self.setMaximumWidth(MAX_WIDTH)
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
        self.list.setItemDelegate(ConversationRowDelegate(self.list))
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
        """Conversation ids in the order shown (the headings left out)."""
        return [item.data(ID_ROLE) for item in self._rows()]

    @property
    def groups(self) -> list[tuple[str, list[int]]]:
        """Each heading shown, with the ids of the conversations under it."""
        groups: list[tuple[str, list[int]]] = []
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ID_ROLE) is None:
                groups.append((item.text(), []))
            elif groups:
                groups[-1][1].append(item.data(ID_ROLE))
        return groups

    def item(self, conversation_id: int) -> QListWidgetItem | None:
        """The row of a conversation (None when it is not shown)."""
        return next((i for i in self._rows() if i.data(ID_ROLE) == conversation_id), None)

    def select(self, conversation_id: int) -> None:
        """Select a conversation as the person would (``conversation_selected`` follows)."""
        item = self.item(conversation_id)
        if item is not None:
            self.list.setCurrentItem(item)

    def _rows(self) -> list[QListWidgetItem]:
        items = (self.list.item(i) for i in range(self.list.count()))
        return [item for item in items if item.data(ID_ROLE) is not None]

    def current_id(self) -> int | None:
        """The selected conversation's id."""
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item is not None else None

    def set_conversations(
        self,
        conversations: Sequence[Conversation],
        current: int | None,
        *,
        now: float | None = None,
    ) -> None:
        """Show ``conversations`` (newest activity first) grouped by day, ``current`` selected.

        ``now``: the time the groups are seen from (the history's clock; default: now).
        """
        self._updating = True
        now = time.time() if now is None else now
        try:
            self.list.clear()
            for group, members in group_by_activity(conversations, now):
                heading = QListWidgetItem(group.value)
                heading.setFlags(Qt.ItemFlag.NoItemFlags)  # never selected, skipped by keys
                heading.setData(Qt.ItemDataRole.AccessibleTextRole, f"{group.value}:")
                self.list.addItem(heading)
                for conversation in members:
                    item = QListWidgetItem(conversation.title)
                    item.setData(ID_ROLE, conversation.id)
                    item.setData(WHEN_ROLE, activity_label(conversation.updated_at, now))
                    when = activity_tooltip(conversation.updated_at)
                    item.setToolTip(f"{conversation.title}\n{when}")
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
        item = self.item(conversation_id)
        if item is None:
            return
        title, ok = QInputDialog.getText(
            self, "Rename chat", "Title:", QLineEdit.EchoMode.Normal, item.text()
        )
        if ok and title.strip():
            self.rename_requested.emit(conversation_id, title.strip())

    @Slot()
    def _on_search_timer_timeout(self) -> None:
        self.search_changed.emit(self.query)

    @Slot(object, object)
    def _on_list_current_item_changed(self, current: QListWidgetItem | None, _prev: object) -> None:
        if not self._updating and current is not None and current.data(ID_ROLE) is not None:
            self.conversation_selected.emit(current.data(ID_ROLE))

    @Slot(QListWidgetItem)
    def _on_list_item_double_clicked(self, item: QListWidgetItem) -> None:
        if item.data(ID_ROLE) is not None:
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
        if item is None or item.data(ID_ROLE) is None:
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
