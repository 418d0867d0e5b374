"""ChatSession on a real SQLite file: saving as it goes, undo, restore after a restart."""

from __future__ import annotations

import sqlite3

import pytest

from app.core.chat.messages import Role
from app.core.chat.session import ChatSession, SessionError, title_from
from app.core.chat.store import ChatStore
from app.core.chat.store_schema import MessageState, ReplyStats


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path):
    return tmp_path / "chats.sqlite3"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def session(db, clock):
    store = ChatStore(db)
    yield ChatSession(store, clock=clock, save_interval=1.0)
    store.close()


def test_title_from_first_line_shortened_at_a_word():
    assert title_from("\n  What is the capital of France?\nthanks") == (
        "What is the capital of France?"
    )
    long = "Please explain the difference between chunked attention and global attention"
    title = title_from(long)
    assert title.endswith("…") and len(title) <= 49 and long.startswith(title[:-1])


def test_first_message_creates_and_titles_the_conversation(session):
    assert session.conversation is None and session.prompt() == ([], frozenset())
    session.add_user("Hello there\nsecond line", system="Be brief.")
    conversation = session.conversation
    assert conversation is not None and conversation.title == "Hello there"
    messages, pinned = session.prompt()
    assert [(m.role, m.content) for m in messages] == [
        (Role.SYSTEM, "Be brief."),
        (Role.USER, "Hello there\nsecond line"),
    ]
    assert pinned == {0}


def test_streaming_reply_is_saved_at_most_interval_apart(session, db, clock):
    session.add_user("hi")
    reply_id = session.begin_reply()
    assert session.append_reply("Hel") is False  # too soon after begin
    clock.now += 1.0
    assert session.append_reply("lo") is True
    # another connection sees the saved text while it streams (opening a ChatStore would
    # mark it interrupted, so read the file directly)
    with sqlite3.connect(db) as other:
        row = other.execute("SELECT content, state FROM messages WHERE id = ?", (reply_id,))
        assert row.fetchone() == ("Hello", "streaming")
    assert session.append_reply(" world") is False
    session.finish_reply(stats=ReplyStats(12.5, 10, 3))
    stored = session.messages()[-1]
    assert stored.content == "Hello world" and stored.state is MessageState.COMPLETE
    assert stored.stats.tok_s == 12.5
    assert not session.replying


def test_a_crash_mid_reply_leaves_an_incomplete_reply_after_restart(db, clock):
    store = ChatStore(db)
    session = ChatSession(store, clock=clock, save_interval=1.0)
    session.add_user("tell me a story")
    session.begin_reply()
    clock.now += 2
    session.append_reply("Once upon")
    session.append_reply(" a time")  # not saved yet: the crash loses at most one interval
    store._conn.close()  # the app dies without finishing anything
    store._conn = None

    with ChatStore(db) as reopened:
        after = ChatSession(reopened)
        conversation = after.restore_last()
        assert conversation is not None and conversation.title == "tell me a story"
        last = after.messages()[-1]
        assert last.state is MessageState.INCOMPLETE and last.content == "Once upon"
        assert [m.content for m in after.prompt()[0]] == ["tell me a story", "Once upon"]


def test_interrupt_keeps_the_partial_reply(session):
    session.add_user("hi")
    session.begin_reply()
    session.append_reply("partial")
    session.interrupt_reply()
    last = session.messages()[-1]
    assert (last.content, last.state) == ("partial", MessageState.INCOMPLETE)


def test_regenerate_and_undo(session):
    session.add_user("one")
    session.begin_reply()
    session.finish_reply("first answer")
    undo = session.take_last_reply()
    assert [m.content for m in session.messages()] == ["one"]
    session.begin_reply()
    session.finish_reply("second answer")
    session.undo(undo)
    assert [m.content for m in session.messages()] == ["one", "first answer"]


def test_edit_replaces_later_messages_and_undo_restores(session):
    for text in ("q1", "q2"):
        session.add_user(text)
        session.begin_reply()
        session.finish_reply(f"a-{text}")
    undo = session.edit_user_message(0, "q1 edited")
    assert [m.content for m in session.messages()] == ["q1 edited"]
    with pytest.raises(SessionError):
        session.edit_user_message(5, "nope")
    session.undo(undo)
    assert [m.content for m in session.messages()] == ["q1", "a-q1", "q2", "a-q2"]


def test_editing_a_reply_is_refused(session):
    session.add_user("q")
    session.begin_reply()
    session.finish_reply("a")
    with pytest.raises(SessionError, match="your own"):
        session.edit_user_message(1, "x")


def test_delete_open_conversation_starts_new_and_undo_brings_it_back(session):
    session.add_user("keep me")
    conversation_id = session.conversation_id
    token = session.delete(conversation_id)
    assert session.conversation is None
    assert session.store.list_conversations() == []
    assert session.undo_delete(token)
    assert [c.id for c in session.store.list_conversations()] == [conversation_id]


def test_switching_conversation_mid_reply_keeps_it_incomplete(session):
    session.add_user("first chat")
    first = session.conversation_id
    session.begin_reply()
    session.append_reply("half")
    session.new()
    assert session.conversation is None
    session.open(first)
    last = session.messages()[-1]
    assert (last.content, last.state) == ("half", MessageState.INCOMPLETE)


def test_begin_reply_without_a_conversation_is_an_error(session):
    with pytest.raises(SessionError):
        session.begin_reply()
