"""The chat history file itself: opening it safely, and saving what it can when damaged.

Opening reads before it writes: a file from a newer Herd is refused untouched, a file whose
pages fail ``PRAGMA quick_check`` is reported as damaged, and a file another program holds
locked is reported as busy (never as damaged). :func:`recover_history` copies every row
still readable into a fresh file and keeps the damaged one beside it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.chat.store_schema import (
    MESSAGE_COLUMNS,
    MIGRATIONS,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreVersionError,
    conversation_from_row,
    message_from_row,
    select_list,
)

__all__ = [
    "BUSY_TIMEOUT_S",
    "RecoveryReport",
    "is_busy",
    "open_database",
    "recover_history",
    "store_failure",
]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0  # how long one open or write waits for another program's lock
MAX_UNREADABLE_RUN = 10_000  # ids tried past a damaged page when the last id is unknown
SIDE_FILES = ("", "-wal", "-shm")  # SQLite's file and its WAL companions move together


def is_busy(error: sqlite3.Error) -> bool:
    """Whether SQLite failed because another connection holds the file's lock."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _busy(path: Path, error: sqlite3.Error) -> StoreBusyError:
    return StoreBusyError(
        f"The chat history {path} is in use by another program ({error}).",
        "Close the other Herd (or the program holding that file) and try again. "
        "Nothing was changed.",
    )


def store_failure(path: Path, error: sqlite3.Error) -> StoreError:
    """The error to show for a failed read or write: busy, or a plain :class:`StoreError`."""
    if is_busy(error):
        return _busy(path, error)
    return StoreError(
        f"Herd could not read or save the chat history ({error}).",
        f"Check the disk has free space and that {path} can be written.",
    )


def _corrupt(path: Path, detail: object) -> StoreCorruptError:
    return StoreCorruptError(
        f"The chat history file {path} is damaged or is not a Herd chat database ({detail}).",
        "Start Herd again to save what can still be read into a new history (the damaged "
        "file is kept beside it), or quit Herd and move that file aside.",
    )


def _unreadable(path: Path, error: sqlite3.Error) -> StoreError:
    return _busy(path, error) if is_busy(error) else _corrupt(path, error)


def open_database(
    path: Path,
    migrations: tuple[tuple[str, ...], ...] = MIGRATIONS,
    *,
    busy_timeout: float = BUSY_TIMEOUT_S,
    check: bool = True,
) -> sqlite3.Connection:
    """Open (creating if new) the chat database at ``path`` and bring its schema up to date.

    Args:
        path: The SQLite file, usually ``AppPaths.chats_db``.
        migrations: The ordered migrations (tests pass their own list).
        busy_timeout: Seconds to wait for another program's lock, here and on every
            later statement of the connection.
        check: Run ``PRAGMA quick_check`` before writing anything.

    Returns:
        An autocommit connection (transactions are explicit) with WAL journaling and
        foreign keys on; it may only be used from the thread that opened it.

    Raises:
        StoreCorruptError: The file is not SQLite, or its pages fail the check.
        StoreVersionError: The file comes from a newer Herd; it is left untouched.
        StoreBusyError: Another program held the file locked for ``busy_timeout``.
        StoreError: The file or its folder cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    except (OSError, sqlite3.Error) as error:
        raise StoreError(
            f"Herd cannot open its chat history at {path} ({error}).",
            "Check that the folder exists and that you may write to it.",
        ) from error
    try:
        _prepare(conn, path, migrations, check)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(
    conn: sqlite3.Connection, path: Path, migrations: tuple[tuple[str, ...], ...], check: bool
) -> None:
    latest = len(migrations)
    try:
        # Read-only first: a newer or broken file must not be changed by switching to WAL.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        if version <= latest and check:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                found = problems[0].splitlines()[-1]
                more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
                raise _corrupt(path, f"SQLite's check found: {found}{more}")
    except sqlite3.DatabaseError as error:
        raise _unreadable(path, error) from error
    if version > latest:
        raise StoreVersionError(
            f"This chat history ({path}) was written by a newer Herd "
            f"(schema version {version}; this Herd knows up to {latest}).",
            "Update Herd to open it, or move the file aside to start a new history here. "
            "The file has not been changed.",
        )
    try:
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL + NORMAL: a commit survives the app or engine dying (not a power cut), and is
        # cheap enough for a streaming reply saved every second.
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, migrations)
    except sqlite3.DatabaseError as error:
        if is_busy(error):
            raise _busy(path, error) from error
        if isinstance(error, sqlite3.OperationalError):
            raise StoreError(
                f"Herd cannot prepare its chat history at {path} ({error}).",
                "Check the disk has free space and that no other program holds the file.",
            ) from error
        raise _corrupt(path, error) from error


def _migrate(conn: sqlite3.Connection, migrations: tuple[tuple[str, ...], ...]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again inside the lock: another Herd may have migrated in between.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version + 1, len(migrations) + 1):
            log.info("migrating chat history to schema version %d", number)
            for statement in migrations[number - 1]:
                conn.execute(statement)
        if version < len(migrations):
            conn.execute(f"PRAGMA user_version = {len(migrations):d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :func:`recover_history` saved from a damaged chat history.

    The ``*_lost`` counts are upper bounds: an id that could not be read may also have
    been a conversation or message deleted long ago.
    """

    damaged_copy: Path  # the original file, moved aside and kept
    conversations_saved: int
    messages_saved: int
    conversations_lost: int
    messages_lost: int

    def note(self) -> str:
        """One line for the status bar."""
        kept = f"The damaged file was kept as {self.damaged_copy.name}."
        if not (self.conversations_saved or self.messages_saved):
            return f"The chat history was damaged and nothing in it could be read. {kept}"
        lost = [
            f"{count} {what}"
            for count, what in ((self.conversations_lost, "conversations"),
                                (self.messages_lost, "messages"))
            if count
        ]  # fmt: skip
        gone = f" Up to {' and '.join(lost)} could not be read." if lost else ""
        return (
            f"The chat history was damaged. Herd saved {self.conversations_saved} "
            f"conversations and {self.messages_saved} messages into a new history.{gone} {kept}"
        )


def recover_history(
    path: Path, *, busy_timeout: float = BUSY_TIMEOUT_S, clock: Callable[[], float] = time.time
) -> RecoveryReport:
    """Copy every readable conversation and message of a damaged history into a new one.

    Rows are read one table at a time in id order; a damaged page costs only the rows on
    it. The new file is written beside the old one first, then the old file (with its
    ``-wal`` and ``-shm``) is renamed ``<name>.damaged-<time>`` and the new one takes its
    place, so a crash part-way leaves the original where it was.

    Args:
        path: The damaged chat history.
        busy_timeout: Seconds to wait for another program's lock.
        clock: Current Unix time, for the kept file's name.

    Returns:
        Where the damaged file was kept and how much was saved and lost.

    Raises:
        StoreBusyError: Another program holds the file locked.
        StoreError: The new file cannot be written or the old one cannot be moved.
    """
    path = Path(path)
    fresh_path = path.with_name(f"{path.name}.recovering")
    aside = path.with_name(f"{path.name}.damaged-{int(clock())}")
    while any(Path(f"{aside}{suffix}").exists() for suffix in SIDE_FILES):
        aside = aside.with_name(f"{aside.name}-1")
    try:
        for suffix in SIDE_FILES:  # a recovery cut short before its last rename
            Path(f"{fresh_path}{suffix}").unlink(missing_ok=True)
        # Read-only: the damaged file is evidence; not even a WAL checkpoint goes into it.
        ours = [Path(f"{path}{s}") for s in SIDE_FILES[1:] if not Path(f"{path}{s}").exists()]
        source = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout
        )
        try:
            fresh = open_database(fresh_path, busy_timeout=busy_timeout, check=False)
            try:
                counts = _copy_readable(source, fresh)
            finally:
                fresh.close()
        finally:
            source.close()
            for side_file in ours:  # the empty -wal and -shm that reading made
                side_file.unlink(missing_ok=True)
        for suffix in SIDE_FILES:
            if Path(f"{path}{suffix}").exists():
                Path(f"{path}{suffix}").rename(Path(f"{aside}{suffix}"))
        for suffix in SIDE_FILES:
            if Path(f"{fresh_path}{suffix}").exists():
                Path(f"{fresh_path}{suffix}").rename(Path(f"{path}{suffix}"))
    except sqlite3.Error as error:
        raise store_failure(path, error) from error
    except OSError as error:
        raise StoreError(
            f"Herd could not set the damaged chat history {path} aside ({error}).",
            "Check that you may write to its folder, then start Herd again.",
        ) from error
    report = RecoveryReport(aside, *counts)
    log.warning("recovered the damaged chat history: %s", report)
    return report


def _copy_readable(source: sqlite3.Connection, fresh: sqlite3.Connection) -> tuple[int, ...]:
    """Copy what ``source`` still holds; returns saved and lost conversations and messages."""
    conversations, lost_conversations = _readable_rows(source, fresh, "conversations")
    read, lost_messages = _readable_rows(source, fresh, "messages")
    # A damaged page can also read back as garbage: keep only rows that make sense.
    conversations = [row for row in conversations if _makes_sense(row, conversation_from_row)]
    messages = [row for row in read if _makes_sense(row, message_from_row)]
    fresh.execute("BEGIN IMMEDIATE")
    try:
        saved = _insert(fresh, "conversations", conversations)
        orphans: dict[int, list[float]] = {}  # messages whose conversation's row was lost
        for row in messages:
            if row[1] not in saved:
                orphans.setdefault(row[1], []).append(row[8])
        for conversation_id, times in orphans.items():
            fresh.execute(
                "INSERT INTO conversations (id, title, created_at, updated_at) "
                "VALUES (?, 'Recovered chat', ?, ?)",
                (conversation_id, min(times), max(times)),
            )
        saved_messages = _insert(fresh, "messages", messages)
        try:  # only which chat was open and the window's geometry: all or nothing
            state = source.execute("SELECT key, value FROM ui_state").fetchall()
            fresh.executemany("INSERT OR IGNORE INTO ui_state (key, value) VALUES (?, ?)", state)
        except sqlite3.DatabaseError as error:
            if is_busy(error):
                raise
        fresh.execute("COMMIT")
    except BaseException:
        if fresh.in_transaction:
            fresh.execute("ROLLBACK")
        raise
    return (
        len(saved) + len(orphans),
        len(saved_messages),
        len(lost_conversations - saved - orphans.keys()),
        len(lost_messages) + len(read) - len(saved_messages),
    )


def _makes_sense(row: Sequence[Any], parse: Callable[[Sequence[Any]], object]) -> bool:
    """Whether ``parse`` reads the row and its ids and times have the right types."""
    try:
        parse(row)
    except (ValueError, TypeError, KeyError):
        return False
    # messages: id, conversation_id ... created_at (8); conversations: id ... updated_at (5)
    ids, times = (row[0:2], row[8:9]) if parse is message_from_row else (row[0:1], row[4:6])
    return all(isinstance(v, int) for v in ids) and all(isinstance(v, int | float) for v in times)


def _columns(fresh: sqlite3.Connection, table: str) -> list[str]:
    """The current schema's columns of ``table``, in the order the row parsers expect."""
    if table == "messages":
        return [name.strip() for name in MESSAGE_COLUMNS.split(",")]
    return [row[1] for row in fresh.execute(f"PRAGMA table_info({table})")]


def _readable_rows(
    source: sqlite3.Connection, fresh: sqlite3.Connection, table: str
) -> tuple[list[tuple[Any, ...]], set[int]]:
    """Every row of ``table`` ``source`` can still read, by id; and the ids it could not."""
    try:
        if not source.execute("SELECT 1 FROM sqlite_schema WHERE name = ?", (table,)).fetchone():
            return [], set()
    except sqlite3.DatabaseError as error:
        if is_busy(error):
            raise
        return [], set()  # the schema itself is unreadable: no table can be found
    last = _last_id(source, table)
    columns = select_list(source, table, _columns(fresh, table))
    sql = f"SELECT {columns} FROM {table} WHERE id >= ? ORDER BY id"
    rows: list[tuple[Any, ...]] = []
    lost: set[int] = set()
    next_id, run = 1, 0
    # A read that fails at a damaged page resumes just past the last id it read; a seek
    # into the damaged page fails too, so it steps one id at a time until past it.
    while (next_id <= last) if last is not None else (run < MAX_UNREADABLE_RUN):
        try:
            for row in source.execute(sql, (next_id,)):
                rows.append(tuple(row))
                next_id, run = row[0] + 1, 0
            break
        except sqlite3.DatabaseError as error:
            if is_busy(error):
                raise
            lost.add(next_id)
            next_id, run = next_id + 1, run + 1
    if last is None:
        # Without the last id, a run of failures to the end is indistinguishable from ids
        # never used: those are not counted (the count is low when the tail is damaged).
        lost = {i for i in lost if i < next_id - run}
    return rows, lost


def _last_id(source: sqlite3.Connection, table: str) -> int | None:
    """The highest id ever given in ``table`` (AUTOINCREMENT keeps it); None if unreadable."""
    try:
        row = source.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
        found = (row.fetchone() or (None,))[0]
    except sqlite3.DatabaseError as error:
        if is_busy(error):
            raise
        return None
    return found if isinstance(found, int) else None


def _insert(fresh: sqlite3.Connection, table: str, rows: Sequence[tuple[Any, ...]]) -> set[int]:
    """Insert each row the schema accepts; the ids of those inserted."""
    columns = _columns(fresh, table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    saved: set[int] = set()
    for row in rows:
        try:
            fresh.execute(sql, row)
        except (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError):
            continue
        saved.add(row[0])
    return saved
