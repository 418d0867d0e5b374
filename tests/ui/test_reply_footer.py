"""Under each reply: its length, speed, the wait for its first word, and why it stopped."""

from __future__ import annotations

import time

from app.core import events as ev
from app.core.chat.messages import Role
from app.core.chat.store_schema import MessageState, ReplyStats, StoredMessage
from app.ui.chat.chat_view import ChatView
from app.ui.chat.shown_message import ShownMessage


def _stored(stats: ReplyStats) -> StoredMessage:
    return StoredMessage(
        id=1, conversation_id=1, position=1, role=Role.ASSISTANT, content="Hi.", images=(),
        state=MessageState.COMPLETE, pinned=False, created_at=time.time(), stats=stats,
    )  # fmt: skip


def test_a_stored_reply_keeps_its_first_word_wait_and_stop_reason() -> None:
    shown = ShownMessage.from_stored(_stored(ReplyStats(12.0, 40, 1200, 0.42, "max_tokens")))
    assert "1,200 tokens" in shown.footer and "12.0 tok/s" in shown.footer
    assert "first word after 0.42 s" in shown.footer
    assert "reached the length limit" in shown.footer
    plain = ShownMessage.from_stored(_stored(ReplyStats(12.0, 40, 9, 0.3, "end_of_turn")))
    assert "limit" not in plain.footer and "stopped" not in plain.footer
    odd = ShownMessage.from_stored(_stored(ReplyStats(None, None, None, None, "from-the-future")))
    assert odd.footer  # an unknown reason from a newer Herd is left out, not an error


def test_a_live_reply_shows_them_too(qtbot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.begin_reply()
    view.append_reply("Hello")
    done = ev.Finished(10, 5, 100.0, 20.0, ev.StopReason.USER, time_to_first_token_s=0.25)
    view.finish_reply(done)
    footer = view.bubbles[-1].footer
    assert "first word after 0.25 s" in footer and "stopped" in footer


def test_regenerate_is_offered_only_while_a_model_can_answer(qtbot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.show()
    view.begin_reply()
    view.finish_reply(ev.Finished(3, 1, 1.0, 1.0, ev.StopReason.END_OF_TURN))
    last = view.bubbles[-1]
    view.set_can_reply(False)  # the model was unloaded, or the engine stopped
    assert last.regenerate_button.isHidden()
    view.set_can_reply(True)
    assert not last.regenerate_button.isHidden()
