"""The window's layout: chats grouped by day (on the history's clock), a resizable sidebar
whose width is remembered, and Continue shown disabled where the model's format cannot."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from app.core.chat.messages import ChatMessage, Role
from app.core.chat.store import ChatStore
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.ui.chat.chat_view import ChatView
from app.ui.chat.shown_message import ShownMessage
from app.ui.chat.sidebar import WHEN_ROLE
from app.ui.main_window import MainWindow

NOW = datetime(2026, 11, 23, 15, 0).timestamp()  # a Monday afternoon


class Clock:
    """The history's clock: each chat is made at its own time, then it is 'now'."""

    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0) if self.times else NOW


def _at(*when: int) -> float:
    return datetime(*when).timestamp()


def test_the_sidebar_groups_chats_by_their_last_activity(qtbot, tmp_path: Path) -> None:
    home = AppPaths.under(tmp_path / "home").ensure()
    made = [_at(2026, 11, 23, 9, 30), _at(2026, 11, 22, 20, 0), _at(2026, 11, 18, 8, 0)]
    made += [_at(2025, 12, 24, 18, 0)]
    store = ChatStore(home.chats_db, clock=Clock(*[t for t in made for _ in range(2)]))
    for title in ("Today's chat", "Yesterday's chat", "Last Wednesday", "Christmas Eve"):
        chat = store.create_conversation(title)
        store.add_message(chat.id, ChatMessage(Role.USER, title))
    window = MainWindow(home, Settings(), history=(store, ""))
    qtbot.addWidget(window)
    window.show()
    try:
        sidebar = window.sidebar
        titles = {i: sidebar.item(i).text() for i in sidebar.ids}
        shown = [(heading, [titles[i] for i in ids]) for heading, ids in sidebar.groups]
        assert shown == [
            ("Today", ["Today's chat"]),
            ("Yesterday", ["Yesterday's chat"]),
            ("Previous 7 days", ["Last Wednesday"]),
            ("Earlier", ["Christmas Eve"]),
        ]
        dates = [sidebar.item(i).data(WHEN_ROLE) for i in sidebar.ids]
        assert dates == ["09:30", "20:00", "Wed 08:00", "24 Dec 2025"]
        with qtbot.waitSignal(sidebar.search_changed, timeout=2_000):
            sidebar.search.setText("eve")  # search still filters, still grouped
        assert sidebar.groups == [("Earlier", [sidebar.ids[0]])]
        assert sidebar.item(sidebar.ids[0]).text() == "Christmas Eve"
    finally:
        window.close()


def test_the_sidebars_width_is_remembered(qtbot, tmp_path: Path) -> None:
    home = AppPaths.under(tmp_path / "home").ensure()
    window = MainWindow(home, Settings())
    qtbot.addWidget(window)
    window.show()
    try:
        assert window.window_state.sidebar_width == 250
        window.splitter.moveSplitter(330, 1)  # as a drag of the handle does
        assert window.window_state.sidebar_width == 330
    finally:
        window.close()
    again = MainWindow(home, Settings())
    qtbot.addWidget(again)
    again.show()
    try:
        assert again.window_state.sidebar_width == 330
        assert again.sidebar.width() == 330
    finally:
        again.close()


def test_continue_is_shown_disabled_with_the_reason_when_the_format_cannot(qtbot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.load_messages([ShownMessage(Role.USER, "Hi"), ShownMessage(Role.ASSISTANT, "Hello")])
    reply = view.bubbles[-1]
    view.set_continue(True)
    assert not reply.continue_button.isHidden() and reply.continue_button.isEnabled()
    why = "This model's chat template cannot leave its last reply open to continue it."
    view.set_continue(True, why)
    assert not reply.continue_button.isHidden() and not reply.continue_button.isEnabled()
    assert reply.continue_button.toolTip() == why
    view.set_continue(False)
    assert reply.continue_button.isHidden()
    view.set_can_reply(False)  # no model: neither Regenerate nor Continue
    view.set_continue(True)
    assert reply.continue_button.isHidden() and reply.regenerate_button.isHidden()
