"""What the app does at start with a chat history it must not touch."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from app.core.chat.store import ChatStore
from app.core.chat.store_schema import StoreBusyError, StoreError, StoreVersionError
from app.core.paths import AppPaths
from app.ui.app import open_history_or_ask


def _history(paths: AppPaths) -> Path:
    store = ChatStore(paths.chats_db)
    store.create_conversation("kept")
    store.close()
    return paths.chats_db


def test_a_newer_history_is_shown_and_left_alone(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path).ensure()
    db = _history(paths)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 999")
    before = sorted(p.name for p in db.parent.iterdir()), db.read_bytes()
    asked: list[tuple[StoreError, bool]] = []
    result = open_history_or_ask(paths, lambda e, can_retry: asked.append((e, can_retry)))
    assert result is None
    assert len(asked) == 1 and isinstance(asked[0][0], StoreVersionError)
    assert asked[0][1] is False and "newer Herd" in asked[0][0].user_message
    assert (sorted(p.name for p in db.parent.iterdir()), db.read_bytes()) == before


def test_a_locked_history_is_retried_when_asked(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path).ensure()
    db = _history(paths)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        asked: list[StoreError] = []

        def ask(error: StoreError, *, can_retry: bool) -> bool:
            asked.append(error)
            assert can_retry
            holder.kill()  # the other program closes; "Retry"
            holder.wait()
            return True

        started = time.monotonic()
        result = open_history_or_ask(paths, ask)
        assert len(asked) == 1 and isinstance(asked[0], StoreBusyError)
        assert result is not None
        store, note = result
        assert [c.title for c in store.list_conversations()] == ["kept"]
        store.close()
        assert not list(db.parent.glob("*.damaged-*"))
        assert time.monotonic() - started < 60
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # else it is only closed (with a ResourceWarning) by the GC
