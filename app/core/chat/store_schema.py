"""The chat store's SQLite schema and migrations, its value types and export formats.

The schema version lives in ``PRAGMA user_version``. :data:`MIGRATIONS` is an ordered list:
migration ``n`` (1-based) takes a database from version ``n - 1`` to ``n``. On open every
missing migration runs in one transaction, so a crash mid-upgrade leaves the old version.
A file from a newer Herd is refused before anything is written to it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.core.chat.budget import OverflowPolicy
from app.core.chat.messages import ChatMessage, Role
from app.core.errors import HerdError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Conversation",
    "ConversationNotFoundError",
    "DeleteToken",
    "MessageState",
    "Removed",
    "ReplyStats",
    "StoreCorruptError",
    "StoreError",
    "StoreVersionError",
    "StoredMessage",
    "open_database",
    "to_json",
    "to_markdown",
]

log = logging.getLogger(__name__)


class StoreError(HerdError, RuntimeError):
    """The chat history could not be opened, read or saved."""


class StoreCorruptError(StoreError):
    """The chat history file is not a readable SQLite database."""


class StoreVersionError(StoreError):
    """The chat history was written by a newer Herd than this one."""


class MessageState(StrEnum):
    """Where a stored message is in its life."""

    COMPLETE = "complete"
    STREAMING = "streaming"  # a reply being generated right now
    INCOMPLETE = "incomplete"  # a reply cut short: the app or the engine died, or an error


DEFAULT_TITLE = "New chat"
EXPORT_FORMAT = "herd.conversation"
EXPORT_VERSION = 1


class ConversationNotFoundError(StoreError, LookupError):
    """A conversation or message that no longer exists (purged, or never saved)."""


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation's settings; times are Unix seconds."""

    id: int
    title: str
    system_prompt: str
    overflow_policy: OverflowPolicy
    created_at: float
    updated_at: float  # the newest activity: a message added or finished
    deleted_at: float | None = None  # set while the delete can still be undone


@dataclass(frozen=True, slots=True)
class ReplyStats:
    """How a reply was generated; every field may be unknown."""

    tok_s: float | None = None
    prompt_tokens: int | None = None
    generated_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as saved, with what the chat view shows besides the text."""

    id: int
    conversation_id: int
    position: int
    role: Role
    content: str
    images: tuple[str, ...] = ()
    state: MessageState = MessageState.COMPLETE
    pinned: bool = False
    created_at: float = 0.0
    stats: ReplyStats = field(default_factory=ReplyStats)
    expects_tool_result: bool = False

    def to_chat_message(self) -> ChatMessage:
        """The message as the prompt formats see it."""
        return ChatMessage(self.role, self.content, self.images, self.expects_tool_result)


@dataclass(frozen=True, slots=True)
class DeleteToken:
    """What :meth:`ChatStore.undo_delete` needs to bring a conversation back."""

    conversation_id: int
    deleted_at: float


@dataclass(frozen=True, slots=True)
class Removed:
    """Messages taken out by :meth:`ChatStore.truncate_after`, for :meth:`ChatStore.restore`."""

    conversation_id: int
    messages: tuple[StoredMessage, ...]


def policy_or_default(value: str) -> OverflowPolicy:
    try:
        return OverflowPolicy(value)
    except ValueError:
        return OverflowPolicy.STOP  # a policy from a newer Herd: the safe default


MESSAGE_COLUMNS = (
    "id, conversation_id, position, role, content, images, state, pinned, created_at, "
    "tok_s, prompt_tokens, generated_tokens, expects_tool_result"
)
INSERT_MESSAGE = f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({', '.join('?' * 13)})"


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    return StoredMessage(
        id=row[0],
        conversation_id=row[1],
        position=row[2],
        role=Role.parse(row[3]),
        content=row[4],
        images=tuple(json.loads(row[5] or "[]")),
        state=MessageState(row[6]),
        pinned=bool(row[7]),
        created_at=row[8],
        stats=ReplyStats(row[9], row[10], row[11]),
        expects_tool_result=bool(row[12]),
    )


_V1 = (
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        system_prompt TEXT NOT NULL DEFAULT '',
        overflow_policy TEXT NOT NULL DEFAULT 'stop',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        deleted_at REAL
    )
    """,
    "CREATE INDEX conversations_by_activity ON conversations (deleted_at, updated_at DESC)",
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id INTEGER NOT NULL
            REFERENCES conversations (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL DEFAULT '',
        images TEXT NOT NULL DEFAULT '[]',
        expects_tool_result INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'complete'
            CHECK (state IN ('complete', 'streaming', 'incomplete')),
        created_at REAL NOT NULL,
        tok_s REAL,
        prompt_tokens INTEGER,
        generated_tokens INTEGER,
        pinned INTEGER NOT NULL DEFAULT 0,
        UNIQUE (conversation_id, position)
    )
    """,
    "CREATE INDEX messages_streaming ON messages (state) WHERE state = 'streaming'",
    "CREATE TABLE ui_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

# AUTOINCREMENT: ids are never reused, so a purged conversation's id saved in ui_state or an
# undone message's id never points at something else.
# Append only: never edit a released migration, add the next one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)


def _corrupt(path: Path, error: sqlite3.Error) -> StoreCorruptError:
    return StoreCorruptError(
        f"The chat history file {path} is damaged or is not a Herd chat database ({error}).",
        "Quit Herd, move that file aside (rename it, e.g. to chats.sqlite3.broken) and start "
        "Herd again to begin a fresh history; the old file is kept for recovery.",
    )


def open_database(
    path: Path, migrations: tuple[tuple[str, ...], ...] = MIGRATIONS
) -> sqlite3.Connection:
    """Open (creating if new) the chat database at ``path`` and bring its schema up to date.

    Args:
        path: The SQLite file, usually ``AppPaths.chats_db``.
        migrations: The ordered migrations (tests pass their own list).

    Returns:
        An autocommit connection (transactions are explicit) with WAL journaling and
        foreign keys on; it may only be used from the thread that opened it.

    Raises:
        StoreCorruptError: The file is not a readable SQLite database.
        StoreVersionError: The file comes from a newer Herd; it is left untouched.
        StoreError: The file or its folder cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
    except (OSError, sqlite3.Error) as error:
        raise StoreError(
            f"Herd cannot open its chat history at {path} ({error}).",
            "Check that the folder exists and that you may write to it.",
        ) from error
    try:
        _prepare(conn, path, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path, migrations: tuple[tuple[str, ...], ...]) -> None:
    latest = len(migrations)
    try:
        # Read-only first: a newer or broken file must not be changed by switching to WAL.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlite3.DatabaseError as error:
        raise _corrupt(path, error) from error
    if version > latest:
        raise StoreVersionError(
            f"The chat history at {path} was saved by a newer version of Herd "
            f"(schema version {version}; this Herd knows up to {latest}).",
            "Update Herd to open it. The file has not been changed.",
        )
    try:
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL + NORMAL: a commit survives the app or engine dying (not a power cut), and is
        # cheap enough for a streaming reply saved every second.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA busy_timeout = 5000")
        _migrate(conn, migrations)
    except StoreError:
        raise
    except sqlite3.DatabaseError as error:
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
        conn.execute("ROLLBACK")
        raise


def message_to_row(message: StoredMessage, keep_id: bool = True) -> tuple[Any, ...]:
    """The values for :data:`INSERT_MESSAGE` (``keep_id=False``: a new id is chosen)."""
    m, stats = message, message.stats
    return (
        m.id if keep_id else None, m.conversation_id, m.position, m.role.value, m.content,
        json.dumps(list(m.images)), m.state.value, int(m.pinned), m.created_at,
        stats.tok_s, stats.prompt_tokens, stats.generated_tokens, int(m.expects_tool_result),
    )  # fmt: skip


def to_markdown(conversation: Conversation, messages: Sequence[StoredMessage]) -> str:
    """A conversation as Markdown: its title, system prompt, then a heading per message."""
    parts = [f"# {conversation.title}"]
    if conversation.system_prompt:
        quoted = "\n".join(f"> {line}" for line in conversation.system_prompt.splitlines())
        parts.append(f"**System prompt**\n\n{quoted}")
    for message in messages:
        block = [f"## {message.role.value.capitalize()}"]
        block += [f"![image]({ref})" for ref in message.images]
        if message.content:
            block.append(message.content)
        notes = [] if message.state is MessageState.COMPLETE else [message.state.value]
        if message.stats.tok_s is not None:
            notes.append(f"{message.stats.tok_s:.1f} tok/s")
        if message.stats.generated_tokens is not None:
            notes.append(f"{message.stats.generated_tokens} tokens")
        if notes:
            block.append(f"*({', '.join(notes)})*")
        parts.append("\n\n".join(block))
    return "\n\n".join(parts).rstrip() + "\n"


def to_json(conversation: Conversation, messages: Sequence[StoredMessage]) -> dict[str, Any]:
    """A conversation as a JSON-safe dict; each message holds ``ChatMessage.to_dict()``."""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "title": conversation.title,
        "system_prompt": conversation.system_prompt,
        "overflow_policy": conversation.overflow_policy.value,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "messages": [
            {
                **m.to_chat_message().to_dict(),
                "state": m.state.value,
                "pinned": m.pinned,
                "created_at": m.created_at,
                "tok_s": m.stats.tok_s,
                "prompt_tokens": m.stats.prompt_tokens,
                "generated_tokens": m.stats.generated_tokens,
            }
            for m in messages
        ],
    }


def conversation_from_row(row: Sequence[Any]) -> Conversation:
    """A ``SELECT * FROM conversations`` row as a :class:`Conversation`."""
    return Conversation(row[0], row[1], row[2], policy_or_default(row[3]), *row[4:7])


def prompt_pairs(
    conversation: Conversation, messages: Sequence[StoredMessage]
) -> list[tuple[ChatMessage, bool]]:
    """The prompt's messages, each with whether it is pinned (the system prompt is)."""
    result: list[tuple[ChatMessage, bool]] = []
    if conversation.system_prompt:
        result.append((ChatMessage(Role.SYSTEM, conversation.system_prompt), True))
    for stored in messages:
        # A reply being written is not part of its own prompt; an empty cut-off one says
        # nothing.
        if stored.state is MessageState.STREAMING:
            continue
        if stored.state is MessageState.INCOMPLETE and not (stored.content or stored.images):
            continue
        result.append((stored.to_chat_message(), stored.pinned))
    return result
