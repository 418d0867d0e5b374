"""Chat history files that try to take Herd down: newer, locked by another process, damaged.

Real SQLite files in tmp_path; the lock is held by a real second process.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.chat.messages import ChatMessage, Role
from app.core.chat.session import open_history
from app.core.chat.store import ChatStore
from app.core.chat.store_file import recover_history
from app.core.chat.store_schema import (
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreVersionError,
)
from app.core.errors import HerdError

CONVERSATIONS = 6
MESSAGES = 40  # per conversation
PAGE = 4096

# Holds the file's lock until stdin closes (or HOLD_S passes), like another program would.
HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
hold = float(sys.argv[2])
if hold < 0:
    sys.stdin.readline()
else:
    time.sleep(hold)
conn.execute("COMMIT")
conn.close()
"""


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _history(path: Path) -> Path:
    """A multi-page history: several conversations of several messages each."""
    with ChatStore(path) as store:
        for c in range(CONVERSATIONS):
            conversation = store.create_conversation(f"chat {c}")
            for m in range(MESSAGES):
                role = Role.USER if m % 2 == 0 else Role.ASSISTANT
                text = f"<conv {c} msg {m}> " + "lorem ipsum " * 25
                store.add_message(conversation.id, ChatMessage(role, text))
        store.set_state("open_conversation", "2")
    return path


def _overwrite_page_holding(path: Path, marker: bytes) -> int:
    """Write a page of garbage over the page that holds ``marker``; returns the page index."""
    data = path.read_bytes()
    assert len(data) // PAGE > 20  # really a multi-page file
    page = data.index(marker) // PAGE
    assert 0 < page < len(data) // PAGE - 1  # not the header page, not the last
    with path.open("r+b") as f:
        f.seek(page * PAGE)
        f.write(bytes((i * 37 + 11) % 256 for i in range(PAGE)))
    return page


def _hold_lock(path: Path, hold_s: float = -1) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(hold_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    if holder.stdin is not None:
        holder.stdin.close()
    assert holder.wait(timeout=10) == 0
    if holder.stdout is not None:
        holder.stdout.close()


# -- 1. a history from a newer Herd ---------------------------------------------------------
@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_newer_history_is_refused_and_left_byte_for_byte(tmp_path: Path, journal: str) -> None:
    path = _history(tmp_path / "chats.sqlite3")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    before = _files(tmp_path)

    with pytest.raises(StoreVersionError) as caught:
        open_history(path)
    assert isinstance(caught.value, StoreError) and isinstance(caught.value, HerdError)
    assert "written by a newer Herd" in caught.value.user_message
    assert "999" in caught.value.user_message
    assert "Update Herd" in caught.value.hint and "move the file aside" in caught.value.hint
    assert _files(tmp_path) == before  # no rename, no new history in its place


# -- 2. a history locked by another process -------------------------------------------------
@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_locked_history_is_waited_for_and_never_renamed(tmp_path: Path, journal: str) -> None:
    path = _history(tmp_path / "chats.sqlite3")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.close()
    main_file = path.read_bytes()
    holder = _hold_lock(path)
    notes: list[str] = []
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusyError) as caught:
            open_history(path, busy_timeout=0.2, attempts=3, on_busy=notes.append)
        waited = time.monotonic() - started
    finally:
        _release(holder)
    assert 0.5 <= waited < 5  # three bounded tries of 0.2 s
    assert notes == [
        "The chat history is in use by another program; waiting… (try 2 of 3)",
        "The chat history is in use by another program; waiting… (try 3 of 3)",
    ]
    assert "in use by another program" in caught.value.user_message
    assert "try again" in caught.value.hint
    assert path.read_bytes() == main_file
    assert not [p.name for p in tmp_path.iterdir() if ".damaged" in p.name]
    with ChatStore(path) as store:  # the lock gone, everything is still there
        assert len(store.list_conversations()) == CONVERSATIONS


def test_lock_released_while_waiting_opens_the_same_history(tmp_path: Path) -> None:
    path = _history(tmp_path / "chats.sqlite3")
    holder = _hold_lock(path, hold_s=0.6)
    notes: list[str] = []
    try:
        store, note = open_history(path, busy_timeout=0.25, attempts=20, on_busy=notes.append)
    finally:
        _release(holder)
    with store:
        assert note == "" and notes  # it said it was waiting, then got in
        assert len(store.list_conversations()) == CONVERSATIONS
    assert not [p.name for p in tmp_path.iterdir() if ".damaged" in p.name]


def test_a_short_lock_at_start_up_is_waited_out_with_the_defaults(tmp_path: Path) -> None:
    path = _history(tmp_path / "chats.sqlite3")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = delete")  # the first read itself meets the lock
    conn.close()
    holder = _hold_lock(path, hold_s=0.8)
    try:
        store, note = open_history(path)
    finally:
        _release(holder)
    with store:
        assert note == ""
        assert len(store.list_conversations()) == CONVERSATIONS
    assert not [p.name for p in tmp_path.iterdir() if ".damaged" in p.name]


def test_a_write_blocked_by_another_process_says_busy(tmp_path: Path) -> None:
    path = _history(tmp_path / "chats.sqlite3")
    with ChatStore(path, busy_timeout=0.1) as store:
        holder = _hold_lock(path)
        try:
            with pytest.raises(StoreBusyError):
                store.create_conversation("while locked")
        finally:
            _release(holder)
        assert store.create_conversation("after").title == "after"


# -- 3. a history with a damaged page -------------------------------------------------------
def test_damaged_page_is_found_at_open(tmp_path: Path) -> None:
    path = _history(tmp_path / "chats.sqlite3")
    _overwrite_page_holding(path, b"<conv 3 msg 20>")
    with pytest.raises(StoreCorruptError) as caught:
        ChatStore(path)
    assert "damaged" in caught.value.user_message and str(path) in caught.value.user_message


def test_damaged_history_is_recovered_keeping_what_can_be_read(tmp_path: Path) -> None:
    path = _history(tmp_path / "chats.sqlite3")
    _overwrite_page_holding(path, b"<conv 3 msg 20>")
    damaged = path.read_bytes()

    store, note = open_history(path)
    with store:
        conversations = store.list_conversations()
        assert len(conversations) == CONVERSATIONS
        counts = {c.title: len(store.messages(c.id)) for c in conversations}  # every read works
        assert counts["chat 0"] == counts["chat 5"] == MESSAGES
        assert MESSAGES / 2 < counts["chat 3"] < MESSAGES  # only the damaged page's rows
        assert store.get_state("open_conversation") == "2"
        assert store._db().execute("PRAGMA quick_check").fetchall() == [("ok",)]
        saved = sum(counts.values())
    (kept,) = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert kept.read_bytes() == damaged  # moved aside, not changed, never deleted
    assert "damaged" in note and kept.name in note
    assert f"saved {CONVERSATIONS} conversations and {saved} messages" in note
    assert f"Up to {CONVERSATIONS * MESSAGES - saved} messages could not be read" in note
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".recovering")]


def test_messages_whose_conversation_row_was_lost_get_a_recovered_chat(tmp_path: Path) -> None:
    path = _history(tmp_path / "chats.sqlite3")
    _overwrite_page_holding(path, b"chat 4")  # the conversations table's only page
    report = recover_history(path, clock=lambda: 1234.0)
    assert report.damaged_copy == tmp_path / "chats.sqlite3.damaged-1234"
    assert report.messages_saved == CONVERSATIONS * MESSAGES and report.messages_lost == 0
    assert report.conversations_saved == CONVERSATIONS
    with ChatStore(path) as store:
        conversations = store.list_conversations()
        assert {c.title for c in conversations} == {"Recovered chat"}
        assert all(len(store.messages(c.id)) == MESSAGES for c in conversations)


def test_file_that_is_not_sqlite_is_kept_and_a_new_history_started(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    path.write_bytes(bytes(range(256)) * 64)
    store, note = open_history(path)
    with store:
        assert store.list_conversations() == []
    (kept,) = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert kept.read_bytes() == bytes(range(256)) * 64
    assert "nothing in it could be read" in note and kept.name in note


def test_a_second_recovery_in_the_same_second_keeps_both_copies(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    for content in (b"first" * 1000, b"second" * 1000):
        path.write_bytes(content)
        recover_history(path, clock=lambda: 99.0)
    kept = sorted(p.name for p in tmp_path.iterdir() if ".damaged-" in p.name)
    assert kept == ["chats.sqlite3.damaged-99", "chats.sqlite3.damaged-99-1"]
    assert os.path.getsize(path) > 0  # the new, empty history
