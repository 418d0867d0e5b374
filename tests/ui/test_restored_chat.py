"""A chat reopened at start-up shows its last messages, not an empty scroll area."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect

from app.core.chat.messages import ChatMessage, Role
from app.core.chat.session import OPEN_STATE_KEY
from app.core.chat.store import ChatStore
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.ui.main_window import MainWindow

PARAGRAPH = (
    "Llamas are social animals and live with others as a herd. Their wool is soft and "
    "contains only a small amount of lanolin. Llamas can learn simple tasks after a few "
    "repetitions, and when using a pack they can carry about 25 to 30 percent of their "
    "body weight for 8 to 13 km."
)


def _long_chat(paths: AppPaths) -> None:
    store = ChatStore(paths.chats_db)
    conversation = store.create_conversation("Llamas")
    for i in range(12):
        store.add_message(conversation.id, ChatMessage(Role.USER, f"Question {i}?"))
        text = f"Answer {i}.\n\n" + "\n\n".join([PARAGRAPH] * 3)
        store.add_message(conversation.id, ChatMessage(Role.ASSISTANT, text))
    store.add_message(conversation.id, ChatMessage(Role.ASSISTANT, "THE LAST ANSWER"))
    store.set_state(OPEN_STATE_KEY, str(conversation.id))  # it was open when Herd closed
    store.close()


@pytest.mark.parametrize("size", [(1280, 800), (1600, 1000)])
def test_the_restored_chat_shows_its_last_messages(
    qtbot, tmp_path: Path, size: tuple[int, int]
) -> None:
    paths = AppPaths.under(tmp_path).ensure()
    _long_chat(paths)
    window = MainWindow(paths, Settings())
    qtbot.addWidget(window)
    try:
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        view = window.chat_view
        assert view.bubbles and view.bubbles[-1].text == "THE LAST ANSWER"

        def last_in_sight() -> None:
            viewport = view.viewport()
            last = view.bubbles[-1]
            corner = last.mapTo(viewport, QPoint(0, 0))
            seen = QRect(corner, last.size()).intersected(viewport.rect())
            assert seen.height() >= min(last.height(), 10), (corner, viewport.rect())
            # the column is as tall as its bubbles: no empty band under the last one
            container = view.widget()
            bottom = last.mapTo(container, QPoint(0, last.height())).y()
            assert container.height() - bottom < 120, (container.height(), bottom)

        # once the answers are laid out at the view's width (not the narrow one of before
        # the window was shown), the end of the chat is in sight
        qtbot.waitUntil(lambda: view.bubbles[-2].width() > 500, timeout=3000)
        qtbot.wait(50)
        last_in_sight()
    finally:
        window.close()
