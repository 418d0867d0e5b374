"""A chat's own sampling settings: saved with it (schema v4), older files opening, recovery."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.core.chat.export import export_json
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.session import ChatSession
from app.core.chat.store import ChatStore
from app.core.chat.store_file import open_database, recover_history
from app.core.chat.store_schema import MIGRATIONS, SCHEMA_VERSION, sampling_from_text
from app.core.settings import SamplingSettings

OWN = SamplingSettings(temperature=0.2, top_p=0.5, top_k=20, min_p=0.1, max_tokens=3, seed=9)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "chats.sqlite3"


def test_a_chat_keeps_its_own_sampling_until_reset(db: Path) -> None:
    with ChatStore(db) as store:
        chat = store.create_conversation("tuned")
        other = store.create_conversation("plain")
        assert chat.sampling is None  # a new chat uses the defaults
        store.set_sampling(chat.id, OWN)
    with ChatStore(db) as store:  # after a restart
        assert store.get(chat.id).sampling == OWN
        assert store.get(other.id).sampling is None
        assert export_json(store, chat.id)["sampling"]["max_tokens"] == 3
        store.set_sampling(chat.id, None)  # reset to the defaults
        assert store.get(chat.id).sampling is None
        assert export_json(store, chat.id)["sampling"] is None


def test_the_session_keeps_a_new_chats_sampling_until_it_is_saved(db: Path) -> None:
    with ChatStore(db) as store:
        session = ChatSession(store)
        session.set_sampling(OWN)  # before the first message: nothing saved yet
        assert store.list_conversations() == []
        assert session.sampling == OWN
        session.add_user("Hello")
        assert store.get(session.conversation_id or 0).sampling == OWN
        session.new()
        assert session.sampling is None  # a new chat starts on the defaults
        session.open(store.list_conversations()[0].id)
        assert session.sampling == OWN
        session.set_sampling(None)
        assert session.sampling is None and store.list_conversations()[0].sampling is None


def test_unreadable_or_out_of_range_sampling_gives_defaults_or_range(db: Path) -> None:
    assert sampling_from_text("{not json") is None
    assert sampling_from_text("[1, 2]") is None
    assert sampling_from_text(None) is None
    pulled = sampling_from_text('{"temperature": 9, "max_tokens": 0, "from_the_future": 1}')
    assert pulled == SamplingSettings(temperature=2.0, max_tokens=1)


def _v3_file(path: Path) -> None:
    """A chat history as Herd wrote it at schema version 3, with one chat."""
    conn = open_database(path, MIGRATIONS[:3])
    conn.execute(
        "INSERT INTO conversations (title, created_at, updated_at) VALUES ('old', 1.0, 2.0)"
    )
    conn.execute(
        "INSERT INTO messages (conversation_id, position, role, content, created_at) "
        "VALUES (1, 0, 'user', 'hi', 1.0)"
    )
    conn.close()


def test_a_version_3_history_opens_on_the_defaults_and_is_migrated(db: Path) -> None:
    _v3_file(db)
    with ChatStore(db) as store:
        (old,) = store.list_conversations()
        assert (old.title, old.sampling) == ("old", None)
        store.set_sampling(old.id, OWN)
        assert store.get(old.id).sampling == OWN
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4


def test_recovery_keeps_a_chats_sampling_and_reads_older_files(db: Path, tmp_path: Path) -> None:
    _v3_file(db)  # recovered from a version 3 file: no sampling column there
    report = recover_history(db, clock=lambda: 5.0)
    assert (report.conversations_saved, report.messages_saved) == (1, 1)
    with ChatStore(db) as store:
        assert store.get(1).sampling is None
        store.set_sampling(1, OWN)
    recover_history(db, clock=lambda: 6.0)  # and from a version 4 file: kept
    with ChatStore(db) as store:
        assert store.get(1).sampling == OWN
        assert store.to_chat_messages(1) == [ChatMessage(Role.USER, "hi")]
