"""The conversation sidebar on its own: listing, selection, search debounce, actions."""

from __future__ import annotations

import time
from datetime import datetime

from PySide6.QtCore import Qt

from app.core.chat.budget import OverflowPolicy
from app.core.chat.store_schema import Conversation
from app.ui.chat.sidebar import ConversationSidebar, when


def _conv(i: int, title: str, updated: float) -> Conversation:
    return Conversation(i, title, "", OverflowPolicy.STOP, updated - 10, updated)


def test_when_reads_like_a_person():
    now = datetime(2026, 11, 23, 15, 0).timestamp()
    assert when(now - 5, now) == "now"
    assert when(now - 600, now) == "10 min"
    assert when(datetime(2026, 11, 23, 9, 5).timestamp(), now) == "09:05"
    assert when(datetime(2026, 11, 20, 9, 5).timestamp(), now) == "Fri"
    assert when(datetime(2026, 3, 3, 9, 5).timestamp(), now) == "3 Mar"
    assert when(datetime(2024, 3, 3, 9, 5).timestamp(), now) == "3 Mar 2024"


def test_lists_and_selects_without_echoing(qtbot):
    sidebar = ConversationSidebar()
    qtbot.addWidget(sidebar)
    selected: list[int] = []
    sidebar.conversation_selected.connect(selected.append)
    now = time.time()
    sidebar.set_conversations([_conv(2, "Newer", now), _conv(1, "Older", now - 99)], 1)
    assert sidebar.ids == [2, 1]
    assert sidebar.current_id() == 1
    assert selected == []  # showing the list is not a choice by the person
    assert sidebar.empty_label.isHidden()
    sidebar.list.setCurrentRow(0)
    assert selected == [2]


def test_empty_list_says_so_and_search_debounces(qtbot):
    sidebar = ConversationSidebar()
    qtbot.addWidget(sidebar)
    sidebar.set_conversations([], None)
    assert not sidebar.empty_label.isHidden()
    queries: list[str] = []
    sidebar.search_changed.connect(queries.append)
    with qtbot.waitSignal(sidebar.search_changed, timeout=2000):
        qtbot.keyClicks(sidebar.search, "dragon")
    assert queries == ["dragon"]  # one search after typing pauses, not one per key
    sidebar.set_conversations([], None)
    assert "dragon" in sidebar.empty_label.text()


def test_context_menu_actions_emit(qtbot):
    sidebar = ConversationSidebar()
    qtbot.addWidget(sidebar)
    sidebar.set_conversations([_conv(7, "Chat", time.time())], 7)
    menu = sidebar.context_menu(7)
    names = [a.text() for a in menu.actions() if a.text()]
    assert names == ["Rename…", "Export as Markdown…", "Export as JSON…", "Delete"]
    with qtbot.waitSignal(sidebar.delete_requested) as blocker:
        menu.actions()[-1].trigger()
    assert blocker.args == [7]
    with qtbot.waitSignal(sidebar.export_requested) as blocker:
        menu.actions()[2].trigger()
    assert blocker.args == [7, "json"]
    menu.deleteLater()


def test_delete_key_on_the_list_deletes_the_selected_chat(qtbot):
    sidebar = ConversationSidebar()
    qtbot.addWidget(sidebar)
    sidebar.show()
    sidebar.set_conversations([_conv(3, "A", time.time()), _conv(4, "B", time.time())], 4)
    sidebar.list.setFocus()
    qtbot.waitUntil(sidebar.list.hasFocus, timeout=2000)
    with qtbot.waitSignal(sidebar.delete_requested) as blocker:
        qtbot.keyClick(sidebar.list, Qt.Key.Key_Delete)
    assert blocker.args == [4]
