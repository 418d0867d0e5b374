"""ChatStore on real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from app.core.chat.budget import OverflowPolicy
from app.core.chat.export import export_json, export_markdown
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.store import ChatStore
from app.core.chat.store_schema import (
    SCHEMA_VERSION,
    ConversationNotFoundError,
    MessageState,
    ReplyStats,
    StoreCorruptError,
    StoreError,
    StoreVersionError,
)
from app.core.errors import HerdError
from app.core.paths import AppPaths


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return AppPaths.under(tmp_path).chats_db


@pytest.fixture
def store(db_path: Path):
    with ChatStore(db_path, clock=Clock()) as opened:
        yield opened


def test_creates_file_with_wal_and_current_schema(db_path: Path) -> None:
    ChatStore(db_path).close()
    assert db_path.is_file()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    finally:
        conn.close()


def test_foreign_keys_on(store: ChatStore) -> None:
    assert store._db().execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_empty_v0_file_migrates(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"")  # an empty file is a valid, version-0 SQLite database
    with ChatStore(db_path) as store:
        assert store.list_conversations() == []
        store.create_conversation("hello")
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema")}
        assert {"conversations", "messages", "ui_state"} <= tables
    finally:
        conn.close()


def test_newer_schema_refused_and_file_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(StoreVersionError) as caught:
        ChatStore(db_path)
    assert isinstance(caught.value, StoreError)
    assert isinstance(caught.value, HerdError)
    assert "written by a newer Herd" in caught.value.user_message
    assert "Update Herd" in caught.value.hint
    assert db_path.read_bytes() == before
    assert not Path(f"{db_path}-wal").exists()


def test_corrupt_file_gives_clear_store_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(os.urandom(8192))
    before = db_path.read_bytes()
    with pytest.raises(StoreCorruptError) as caught:
        ChatStore(db_path)
    assert isinstance(caught.value, StoreError)
    assert str(db_path) in caught.value.user_message
    assert "damaged" in caught.value.user_message
    assert "move that file aside" in caught.value.hint
    assert db_path.read_bytes() == before


def test_failed_migration_rolls_back(db_path: Path) -> None:
    from app.core.chat.store_file import open_database
    from app.core.chat.store_schema import MIGRATIONS

    broken = (*MIGRATIONS, ("CREATE TABLE extra (x)", "THIS IS NOT SQL"))
    with pytest.raises(StoreError):
        open_database(db_path, broken)
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0
    finally:
        conn.close()


def test_create_list_order_and_search(store: ChatStore) -> None:
    first = store.create_conversation("Python tips")
    second = store.create_conversation("Cooking")
    third = store.create_conversation()
    assert third.title == "New chat"
    assert [c.id for c in store.list_conversations()] == [third.id, second.id, first.id]
    store.add_message(first.id, ChatMessage(Role.USER, "What is a 100% ÜBER_fast loop?"))
    assert [c.id for c in store.list_conversations()] == [first.id, third.id, second.id]
    assert store.get(first.id).updated_at > store.get(first.id).created_at

    assert [c.id for c in store.list_conversations("cook")] == [second.id]
    assert [c.id for c in store.list_conversations("über_FAST")] == [first.id]
    assert [c.id for c in store.list_conversations("100%")] == [first.id]
    # % and _ are literal, not wildcards.
    assert store.list_conversations("1%0") == []
    assert store.list_conversations("c_oking") == []
    assert store.list_conversations("   ") == store.list_conversations()


def test_rename_prompt_and_policy(store: ChatStore) -> None:
    conversation = store.create_conversation()
    assert conversation.overflow_policy is OverflowPolicy.STOP
    store.rename(conversation.id, "  Trip plan ")
    store.set_system_prompt(conversation.id, "Be brief.")
    store.set_overflow_policy(conversation.id, "drop_oldest")
    got = store.get(conversation.id)
    assert (got.title, got.system_prompt) == ("Trip plan", "Be brief.")
    assert got.overflow_policy is OverflowPolicy.DROP_OLDEST
    with pytest.raises(StoreError, match="overflow policy"):
        store.set_overflow_policy(conversation.id, "explode")
    with pytest.raises(ConversationNotFoundError):
        store.rename(9999, "x")


def test_delete_undo_purge(store: ChatStore) -> None:
    keep = store.create_conversation("keep")
    gone = store.create_conversation("gone")
    store.add_message(gone.id, ChatMessage(Role.USER, "hi"))
    token = store.delete(gone.id)
    assert [c.id for c in store.list_conversations()] == [keep.id]
    assert store.get(gone.id).deleted_at is not None
    assert store.undo_delete(token)
    assert {c.id for c in store.list_conversations()} == {keep.id, gone.id}
    assert store.get(gone.id).deleted_at is None

    token = store.delete(gone.id)
    assert store.purge_deleted() == 1
    assert not store.undo_delete(token)
    with pytest.raises(ConversationNotFoundError):
        store.get(gone.id)
    assert store._rows("SELECT count(*) FROM messages")[0][0] == 0  # cascaded
    # Ids are never reused, so a stale id in ui_state cannot point at a new chat.
    assert store.create_conversation().id > gone.id


def test_messages_round_trip_with_images_pinned_and_stats(db_path: Path) -> None:
    with ChatStore(db_path) as store:
        conversation = store.create_conversation("pics")
        user = ChatMessage(Role.USER, "What is this?", images=("sha256:abc", "/tmp/b.png"))
        user_id = store.add_message(conversation.id, user, pinned=True)
        tool = ChatMessage(Role.ASSISTANT, "calling", expects_tool_result=True)
        store.add_message(conversation.id, tool, stats=ReplyStats(12.5, 40, 7))
    with ChatStore(db_path) as store:
        first, second = store.messages(conversation.id)
        assert (first.id, first.position, first.role) == (user_id, 0, Role.USER)
        assert first.images == ("sha256:abc", "/tmp/b.png")
        assert first.pinned and not second.pinned
        assert first.state is MessageState.COMPLETE
        assert second.stats == ReplyStats(12.5, 40, 7)
        assert second.position == 1
        assert [first.to_chat_message(), second.to_chat_message()] == [user, tool]
        store.set_pinned(second.id, True)
        assert store.message(second.id).pinned


def test_to_chat_messages_and_pinned_indices(store: ChatStore) -> None:
    conversation = store.create_conversation(system_prompt="You are terse.")
    store.add_message(conversation.id, ChatMessage(Role.USER, "a"))
    store.add_message(conversation.id, ChatMessage(Role.ASSISTANT, "b"), pinned=True)
    store.begin_reply(conversation.id)  # a reply being written is not part of the prompt
    assert store.to_chat_messages(conversation.id) == [
        ChatMessage(Role.SYSTEM, "You are terse."),
        ChatMessage(Role.USER, "a"),
        ChatMessage(Role.ASSISTANT, "b"),
    ]
    assert store.prompt(conversation.id)[1] == frozenset({0, 2})


def test_streaming_reply_survives_a_crash_as_incomplete(db_path: Path) -> None:
    store = ChatStore(db_path)
    conversation = store.create_conversation()
    store.add_message(conversation.id, ChatMessage(Role.USER, "Tell me a story"))
    reply = store.begin_reply(conversation.id)
    assert store.message(reply).state is MessageState.STREAMING
    store.update_reply(reply, "Once upon")
    store.update_reply(reply, "Once upon a time")
    # The app dies before finish_reply; the store is opened again on the next start.
    store._db().close()
    with ChatStore(db_path) as reopened:
        message = reopened.message(reply)
        assert message.state is MessageState.INCOMPLETE
        assert message.content == "Once upon a time"
        with pytest.raises(ConversationNotFoundError):
            reopened.update_reply(reply, "more")  # no longer streaming
        assert reopened.to_chat_messages(conversation.id)[-1].content == "Once upon a time"


def test_finish_reply(store: ChatStore) -> None:
    conversation = store.create_conversation()
    reply = store.begin_reply(conversation.id)
    store.update_reply(reply, "partial")
    store.finish_reply(reply, "full answer", ReplyStats(tok_s=42.0, generated_tokens=3))
    message = store.message(reply)
    assert (message.content, message.state) == ("full answer", MessageState.COMPLETE)
    assert message.stats.tok_s == 42.0
    with pytest.raises(StoreError):
        store.finish_reply(reply, "x", state=MessageState.STREAMING)
    with pytest.raises(ConversationNotFoundError):
        store.finish_reply(12345, "x")


def test_truncate_and_restore(store: ChatStore) -> None:
    conversation = store.create_conversation()
    ids = [
        store.add_message(conversation.id, ChatMessage(role, text))
        for role, text in [(Role.USER, "q1"), (Role.ASSISTANT, "a1"), (Role.USER, "q2")]
    ]
    reply = store.begin_reply(conversation.id)
    store.finish_reply(reply, "a2", ReplyStats(9.0, 5, 2))
    before = store.messages(conversation.id)

    removed = store.truncate_after(conversation.id, 1)  # edit and resend of q2
    assert [m.content for m in removed.messages] == ["q2", "a2"]
    assert [m.id for m in store.messages(conversation.id)] == ids[:2]
    store.add_message(conversation.id, ChatMessage(Role.USER, "q2 edited"))

    store.restore(removed)  # undo: the edit is dropped, the old turn is back as it was
    assert store.messages(conversation.id) == before
    assert store.truncate_after(conversation.id, 99).messages == ()


def test_exports(store: ChatStore) -> None:
    conversation = store.create_conversation("Demo", system_prompt="Be kind.")
    store.add_message(conversation.id, ChatMessage(Role.USER, "Show code", images=("a.png",)))
    reply = store.begin_reply(conversation.id)
    store.finish_reply(reply, "```py\nprint(1)\n```", ReplyStats(tok_s=20.0))
    markdown = export_markdown(store, conversation.id)
    assert markdown.startswith("# Demo\n")
    assert "## User\n\n![image](a.png)\n\nShow code" in markdown
    assert "## Assistant\n\n```py\nprint(1)\n```" in markdown
    assert "20.0 tok/s" in markdown
    assert "> Be kind." in markdown

    exported = export_json(store, conversation.id)
    assert json.loads(json.dumps(exported)) == exported
    assert exported["title"] == "Demo"
    assert exported["overflow_policy"] == "stop"
    messages = [ChatMessage.from_dict(m) for m in exported["messages"]]
    assert messages == store.to_chat_messages(conversation.id)[1:]
    assert exported["messages"][1]["tok_s"] == 20.0


def test_ui_state(db_path: Path) -> None:
    with ChatStore(db_path) as store:
        assert store.get_state("open_conversation") is None
        assert store.get_state("geometry", "x") == "x"
        store.set_state("open_conversation", "3")
        store.set_state("geometry", "AdnQywADAAA=")
        store.set_state("geometry", "AQID")
    with ChatStore(db_path) as store:
        assert store.get_state("open_conversation") == "3"
        assert store.get_state("geometry") == "AQID"
        store.set_state("geometry", None)
        assert store.get_state("geometry") is None


def test_closed_store_raises_store_error(db_path: Path) -> None:
    store = ChatStore(db_path)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_conversations()
