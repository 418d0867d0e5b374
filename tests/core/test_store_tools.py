"""The chat history keeps how replies ended, tool calls and where images sit (schema v2)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from app.core.chat.export import export_json, export_markdown
from app.core.chat.llama4_format import EOM, EOT, render_llama4
from app.core.chat.messages import ChatMessage, Role, ToolCall
from app.core.chat.session import ChatSession
from app.core.chat.store import ChatStore
from app.core.chat.store_file import open_database, recover_history
from app.core.chat.store_schema import MIGRATIONS, SCHEMA_VERSION, MessageState

CALL = ToolCall("get_weather", {"city": "Z\u00fcrich", "opts": {"z": 1, "a": [1, "\u00e9"]}})
PICTURED = ChatMessage(
    Role.USER, "Compare  with .", images=("sha256:aa", "sha256:bb"), image_offsets=(8, 14)
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "chats.sqlite3"


@pytest.mark.parametrize("waits", [True, False])
def test_a_reply_that_ended_with_eom_is_rendered_ending_so_again(db: Path, waits: bool) -> None:
    with ChatStore(db) as store:
        session = ChatSession(store)
        session.add_user("Weather in Paris?", system="Use tools.")
        session.begin_reply()
        session.append_reply('{"name": "get_weather", "parameters": {"city": "Paris"}}')
        session.finish_reply(expects_tool_result=waits)
        conversation_id = session.conversation_id
    with ChatStore(db) as store:  # after a restart
        (_, reply) = store.messages(conversation_id or 0)
        assert reply.expects_tool_result is waits and reply.state is MessageState.COMPLETE
        messages = store.to_chat_messages(conversation_id or 0)
        assert messages[-1].expects_tool_result is waits
        text = render_llama4([*messages, ChatMessage(Role.IPYTHON, '{"t": 21}')])
        ending = EOM if waits else EOT
        assert f'{{"city": "Paris"}}}}{ending}<|header_start|>ipython' in text


def test_interrupted_and_default_replies_end_with_eot(db: Path) -> None:
    with ChatStore(db) as store:
        session = ChatSession(store)
        session.add_user("Hi")
        session.begin_reply()
        session.append_reply("Hel")
        session.interrupt_reply()
        session.begin_reply()
        session.finish_reply("Hello.")
        replies = [m for m in session.messages() if m.role is Role.ASSISTANT]
        assert [(m.state, m.expects_tool_result) for m in replies] == [
            (MessageState.INCOMPLETE, False),
            (MessageState.COMPLETE, False),
        ]


def test_tool_calls_and_image_places_round_trip(db: Path) -> None:
    messages = [
        PICTURED,
        ChatMessage(Role.ASSISTANT, "Let me check.", tool_calls=(CALL, ToolCall("noop"))),
        ChatMessage(Role.IPYTHON, "21 \u00b0C"),
    ]
    with ChatStore(db) as store:
        conversation = store.create_conversation("tools", system_prompt="sys")
        for message in messages:
            store.add_message(conversation.id, message)
    with ChatStore(db) as store:
        assert store.to_chat_messages(conversation.id)[1:] == messages
        saved = store.messages(conversation.id)
        assert saved[0].image_offsets == (8, 14) and saved[1].tool_calls == (CALL, ToolCall("noop"))
        assert list(saved[1].tool_calls[0].arguments["opts"]) == ["z", "a"]
        removed = store.truncate_after(conversation.id, -1)
        assert store.messages(conversation.id) == []
        store.restore(removed)
        assert store.messages(conversation.id) == saved
        exported = export_json(store, conversation.id)
        assert [ChatMessage.from_dict(m) for m in exported["messages"]] == messages
        markdown = export_markdown(store, conversation.id)
        assert "Compare ![image](sha256:aa) with ![image](sha256:bb)." in markdown
        assert '`{"name": "get_weather", "parameters": {"city": "Z\u00fcrich"' in markdown


def test_session_places_images_and_keeps_them_placed_on_edit(db: Path) -> None:
    with ChatStore(db) as store:
        session = ChatSession(store)
        session.add_user("Is  a cat?", ["sha256:aa", "sha256:bb"], image_offsets=(3, 10))
        (message,) = session.prompt()[0]
        assert message.image_offsets == (3, 10)
        session.edit_user_message(0, "Is this one a dog?")
        (edited,) = session.prompt()[0]
        # the image at the end stays at the end; the other keeps its place in the text
        assert edited.images == ("sha256:aa", "sha256:bb")
        assert edited.image_offsets == (3, len("Is this one a dog?"))
        session.edit_user_message(0, "Dog?")
        assert session.prompt()[0][0].image_offsets == (3, 4)


def _v1_file(path: Path) -> None:
    """A chat history as Herd wrote it before schema version 2, with one chat."""
    conn = open_database(path, MIGRATIONS[:1])
    conn.execute(
        "INSERT INTO conversations (title, created_at, updated_at) VALUES ('old', 1.0, 2.0)"
    )
    conn.execute(
        "INSERT INTO messages (conversation_id, position, role, content, images, created_at, "
        "expects_tool_result) VALUES (1, 0, 'user', 'look', '[\"sha256:aa\"]', 1.0, 0), "
        "(1, 1, 'assistant', 'call', '[]', 2.0, 1)"
    )
    conn.close()


def test_a_version_1_history_opens_and_is_migrated(db: Path) -> None:
    _v1_file(db)
    with ChatStore(db) as store:
        user, reply = store.to_chat_messages(1)
        assert user == ChatMessage(Role.USER, "look", images=("sha256:aa",))
        assert reply == ChatMessage(Role.ASSISTANT, "call", expects_tool_result=True)
        store.add_message(1, PICTURED)
        assert store.to_chat_messages(1)[-1] == PICTURED
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
        assert {"image_offsets", "tool_calls"} <= columns
    finally:
        conn.close()


def test_a_damaged_version_1_history_is_recovered_with_the_new_columns(db: Path) -> None:
    _v1_file(db)
    report = recover_history(db, clock=lambda: 7.0)
    assert (report.conversations_saved, report.messages_saved, report.messages_lost) == (1, 2, 0)
    with ChatStore(db) as store:
        assert [m.content for m in store.to_chat_messages(1)] == ["look", "call"]
        assert store.messages(1)[1].expects_tool_result


def test_stored_tool_calls_that_make_no_sense_are_not_recovered(db: Path) -> None:
    with ChatStore(db) as store:
        conversation = store.create_conversation()
        store.add_message(conversation.id, ChatMessage(Role.ASSISTANT, "x", tool_calls=(CALL,)))
        store.add_message(conversation.id, ChatMessage(Role.USER, "y"))
        store._execute("UPDATE messages SET tool_calls = ? WHERE position = 0", ('[{"x": 1}]',))
    report = recover_history(db, clock=lambda: 8.0)
    assert report.messages_saved == 1
    with ChatStore(db) as store:
        assert [m.content for m in store.messages(conversation.id)] == ["y"]
    assert json.loads(json.dumps(CALL.to_dict())) == CALL.to_dict()


def test_first_token_time_and_stop_reason_are_kept(tmp_path: Path) -> None:
    from app.core.chat.store_schema import ReplyStats

    store = ChatStore(tmp_path / "chats.db")
    conversation = store.create_conversation("t")
    store.add_message(conversation.id, ChatMessage(Role.USER, "hi"))
    reply = store.begin_reply(conversation.id)
    stats = ReplyStats(12.5, 30, 8, first_token_s=0.42, stop_reason="max_tokens")
    store.finish_reply(reply, "hello", stats)
    store.close()
    again = ChatStore(tmp_path / "chats.db")
    (_, answer) = again.messages(conversation.id)
    assert answer.stats.first_token_s == 0.42 and answer.stats.stop_reason == "max_tokens"
    again.close()
