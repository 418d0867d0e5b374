"""The conversation sidebar on its own: listing, day groups, selection, search debounce, actions."""

from __future__ import annotations

import time
from datetime import datetime

from PySide6.QtCore import Qt

from app.core.chat.budget import OverflowPolicy
from app.core.chat.store_schema import Conversation
from app.ui.chat.sidebar import WHEN_ROLE, ConversationSidebar


def _conv(i: int, title: str, updated: float) -> Conversation:
    return Conversation(i, title, "", OverflowPolicy.STOP, updated - 10, updated)


def test_chats_are_grouped_by_day_each_row_with_its_time(qtbot):
    now = datetime(2026, 11, 23, 15, 0).timestamp()  # a Monday
    at = [
        datetime(2026, 11, 23, 9, 5),  # today
        datetime(2026, 11, 22, 23, 50),  # yesterday
        datetime(2026, 11, 20, 8, 0),  # Friday
        datetime(2026, 3, 3, 9, 5),  # earlier
    ]
    sidebar = ConversationSidebar()
    qtbot.addWidget(sidebar)
    chats = [_conv(10 + i, f"Chat {i}", t.timestamp()) for i, t in enumerate(at)]
    sidebar.set_conversations(chats, 11, now=now)
    assert sidebar.groups == [
        ("Today", [10]),
        ("Yesterday", [11]),
        ("Previous 7 days", [12]),
        ("Earlier", [13]),
    ]
    assert sidebar.ids == [10, 11, 12, 13]
    assert sidebar.current_id() == 11
    dates = [sidebar.item(i).data(WHEN_ROLE) for i in sidebar.ids]
    assert dates == ["09:05", "23:50", "Fri 08:00", "3 Mar"]
    assert "Sunday 22 November 2026, 23:50" in sidebar.item(11).toolTip()
    heading = sidebar.list.item(0)
    assert heading.text() == "Today" and not heading.flags() & Qt.ItemFlag.ItemIsSelectable


def test_arrow_keys_step_over_the_headings(qtbot):
    now = datetime(2026, 11, 23, 15, 0).timestamp()
    sidebar = ConversationSidebar()
    qtbot.addWidget(sidebar)
    sidebar.show()
    today, yesterday = now - 60, datetime(2026, 11, 22, 12, 0).timestamp()
    sidebar.set_conversations([_conv(1, "A", today), _conv(2, "B", yesterday)], 1, now=now)
    selected: list[int] = []
    sidebar.conversation_selected.connect(selected.append)
    sidebar.list.setFocus()
    qtbot.waitUntil(sidebar.list.hasFocus, timeout=2000)
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Down)
    assert selected == [2]  # past the "Yesterday" heading
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Up)
    assert selected == [2, 1]
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Up)
    assert sidebar.current_id() == 1  # the "Today" heading is never current


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
    sidebar.select(2)
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
