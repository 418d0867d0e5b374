"""The chat store's SQLite schema and migrations, its errors and value types.

The schema version lives in ``PRAGMA user_version``. :data:`MIGRATIONS` is an ordered list:
migration ``n`` (1-based) takes a database from version ``n - 1`` to ``n``;
:func:`app.core.chat.store_file.open_database` runs the missing ones. Version 2 added where
images sit in a message's text and an assistant message's tool calls; version 3 a reply's
first-word wait and why it stopped; version 4 a conversation's own sampling settings.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.core import events as ev
from app.core.chat.budget import OverflowPolicy
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.tools import ToolCall
from app.core.errors import HerdError
from app.core.settings import SamplingSettings

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Conversation",
    "ConversationNotFoundError",
    "DeleteToken",
    "MessageState",
    "Removed",
    "ReplyStats",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StoreVersionError",
    "StoredMessage",
    "new_message",
    "sampling_from_text",
    "sampling_to_text",
]


class StoreError(HerdError, RuntimeError):
    """The chat history could not be opened, read or saved."""


class StoreCorruptError(StoreError):
    """The chat history file is damaged: not SQLite, or its pages fail SQLite's check."""


class StoreBusyError(StoreError):
    """Another program held the chat history's lock for longer than Herd waits."""


class StoreVersionError(StoreError):
    """The chat history was written by a newer Herd than this one."""


class MessageState(StrEnum):
    """Where a stored message is in its life."""

    COMPLETE = "complete"
    STREAMING = "streaming"  # a reply being generated right now
    INCOMPLETE = "incomplete"  # a reply cut short: the app or the engine died, or an error


DEFAULT_TITLE = "New chat"


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
    sampling: SamplingSettings | None = None  # the chat's own; None: the app's defaults


@dataclass(frozen=True, slots=True)
class ReplyStats:
    """How a reply was generated; every field may be unknown."""

    tok_s: float | None = None
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    first_token_s: float | None = None  # from Send to the first word of the reply
    stop_reason: str = ""  # why it ended (events.StopReason's value; "" when unknown)

    @classmethod
    def of(cls, finished: ev.Finished) -> ReplyStats:
        """A finished generation's figures, as they are kept."""
        return cls(
            finished.decode_tok_s,
            finished.prompt_tokens,
            finished.generated_tokens,
            finished.time_to_first_token_s or None,
            finished.stop_reason.value,
        )


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
    image_offsets: tuple[int, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()

    def to_chat_message(self) -> ChatMessage:
        """The message as the prompt formats see it."""
        return ChatMessage(
            self.role, self.content, self.images, self.expects_tool_result,
            self.tool_calls, self.image_offsets,
        )  # fmt: skip


def new_message(
    conversation_id: int,
    position: int,
    message: ChatMessage,
    state: MessageState,
    pinned: bool,
    created_at: float,
    stats: ReplyStats | None = None,
) -> StoredMessage:
    """A message about to be saved (its id is chosen when it is inserted)."""
    m = message
    return StoredMessage(
        0, conversation_id, position, m.role, m.content, m.images, MessageState(state),
        pinned, created_at, stats or ReplyStats(), m.expects_tool_result, m.image_offsets,
        m.tool_calls,
    )  # fmt: skip


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


def sampling_to_text(sampling: SamplingSettings | None) -> str | None:
    """A conversation's own sampling as stored: JSON, or NULL for the app's defaults."""
    return None if sampling is None else json.dumps(sampling.to_dict(), sort_keys=True)


def sampling_from_text(text: object) -> SamplingSettings | None:
    """Inverse of :func:`sampling_to_text`; unreadable JSON gives the defaults (None).

    Fields a newer Herd added are ignored, missing ones take their defaults, and values out
    of range are pulled into range (the engine takes what it is sent).
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return SamplingSettings.from_dict(data).clamped() if isinstance(data, dict) else None


def policy_or_default(value: str) -> OverflowPolicy:
    try:
        return OverflowPolicy(value)
    except ValueError:
        return OverflowPolicy.STOP  # a policy from a newer Herd: the safe default


MESSAGE_COLUMNS = (
    "id, conversation_id, position, role, content, images, state, pinned, created_at, "
    "tok_s, prompt_tokens, generated_tokens, expects_tool_result, image_offsets, tool_calls, "
    "first_token_s, stop_reason"
)
INSERT_MESSAGE = f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({', '.join('?' * 17)})"
ADDED_COLUMNS = {
    "image_offsets": "'[]'",
    "tool_calls": "'[]'",
    "first_token_s": "NULL",
    "stop_reason": "''",
    "sampling": "NULL",  # conversations
}
"""Columns added after version 1, with their defaults (for reading older files)."""


def select_list(conn: sqlite3.Connection, table: str, columns: Sequence[str]) -> str:
    """``columns`` to SELECT from ``table`` of ``conn``, which may have an older schema.

    A column added since (:data:`ADDED_COLUMNS`) that the table lacks is read as its
    default, so a damaged file from an older Herd can still be recovered.
    """
    try:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    except sqlite3.DatabaseError:
        present = set()  # unreadable: reading the rows will say why
    return ", ".join(
        f"{ADDED_COLUMNS[name]} AS {name}"
        if present and name not in present and name in ADDED_COLUMNS
        else name
        for name in columns
    )


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
        stats=ReplyStats(row[9], row[10], row[11], row[15], row[16] or ""),
        expects_tool_result=bool(row[12]),
        image_offsets=tuple(json.loads(row[13] or "[]")),
        tool_calls=tuple(ToolCall.from_dict(call) for call in json.loads(row[14] or "[]")),
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

_V2 = (
    "ALTER TABLE messages ADD COLUMN image_offsets TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE messages ADD COLUMN tool_calls TEXT NOT NULL DEFAULT '[]'",
)

_V3 = (
    "ALTER TABLE messages ADD COLUMN first_token_s REAL",
    "ALTER TABLE messages ADD COLUMN stop_reason TEXT NOT NULL DEFAULT ''",
)

_V4 = ("ALTER TABLE conversations ADD COLUMN sampling TEXT",)  # JSON; NULL: the defaults

# AUTOINCREMENT: ids are never reused, so a purged conversation's id saved in ui_state or an
# undone message's id never points at something else.
# Append only: never edit a released migration, add the next one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION = len(MIGRATIONS)


def message_to_row(message: StoredMessage, keep_id: bool = True) -> tuple[Any, ...]:
    """The values for :data:`INSERT_MESSAGE` (``keep_id=False``: a new id is chosen)."""
    m, stats = message, message.stats
    return (
        m.id if keep_id else None, m.conversation_id, m.position, m.role.value, m.content,
        json.dumps(list(m.images)), m.state.value, int(m.pinned), m.created_at,
        stats.tok_s, stats.prompt_tokens, stats.generated_tokens, int(m.expects_tool_result),
        json.dumps(list(m.image_offsets)),
        json.dumps([call.to_dict() for call in m.tool_calls], ensure_ascii=False),
        stats.first_token_s, stats.stop_reason,
    )  # fmt: skip


def fold(text: str | None) -> str | None:
    """SQL function ``herd_fold``: case folding for search (SQLite's lower() is ASCII)."""
    return None if text is None else text.casefold()


def like_pattern(query: str) -> str:
    r"""A LIKE pattern (ESCAPE '\\') matching ``query`` anywhere, after case folding."""
    escaped = query.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def conversations_query(query: str) -> tuple[str, list[Any]]:
    """SQL and parameters listing live conversations, newest activity first.

    With a ``query``, only those whose title or any message contains it (any case).
    """
    sql = "SELECT * FROM conversations c WHERE deleted_at IS NULL"
    params: list[Any] = []
    if query.strip():
        pattern = like_pattern(query.strip())
        sql += (
            " AND (herd_fold(title) LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m"
            " WHERE m.conversation_id = c.id AND herd_fold(m.content) LIKE ? ESCAPE '\\'))"
        )
        params = [pattern, pattern]
    return sql + " ORDER BY updated_at DESC, id DESC", params


def conversation_from_row(row: Sequence[Any]) -> Conversation:
    """A ``SELECT * FROM conversations`` row as a :class:`Conversation`."""
    sampling = sampling_from_text(row[7]) if len(row) > 7 else None
    policy = policy_or_default(row[3])
    return Conversation(row[0], row[1], row[2], policy, row[4], row[5], row[6], sampling)


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
