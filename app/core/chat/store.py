"""Every conversation, saved in one SQLite file (``AppPaths.chats_db``).

Every message is saved when it is created; a streaming reply is saved with
:meth:`ChatStore.update_reply` (one cheap UPDATE, call it at least once a second) and, if the
app or the engine dies before :meth:`ChatStore.finish_reply`, it is marked
:attr:`MessageState.INCOMPLETE` with its partial text on the next open.

Threading: a :class:`ChatStore` owns one connection and may only be used from the thread
that created it (sqlite3 enforces this); the UI keeps it on the main thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.core.chat.budget import OverflowPolicy
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.store_file import BUSY_TIMEOUT_S, open_database, store_failure
from app.core.chat.store_schema import (
    DEFAULT_TITLE,
    INSERT_MESSAGE,
    MESSAGE_COLUMNS,
    Conversation,
    ConversationNotFoundError,
    DeleteToken,
    MessageState,
    Removed,
    ReplyStats,
    StoredMessage,
    StoreError,
    conversation_from_row,
    conversations_query,
    fold,
    message_from_row,
    message_to_row,
    new_message,
    prompt_pairs,
    sampling_to_text,
)
from app.core.settings import SamplingSettings


class ChatStore:
    """Conversations, messages and UI state in one SQLite file.

    Opening creates the file if needed, applies schema migrations and marks every reply
    that was still streaming as incomplete. Use it from one thread only; ``close()`` it.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ) -> None:
        """Open (or create) the chat history.

        Args:
            path: The SQLite file, usually ``AppPaths.chats_db``.
            clock: Current Unix time; tests pass a fake one.
            busy_timeout: Seconds any statement waits for another program's lock.

        Raises:
            StoreError: The file is damaged (:class:`StoreCorruptError`), from a newer Herd
                (:class:`StoreVersionError`), locked (:class:`StoreBusyError`) or unwritable.
        """
        self.path = Path(path)
        self._clock = clock
        conn = open_database(self.path, busy_timeout=busy_timeout)
        self._conn: sqlite3.Connection | None = conn
        conn.create_function("herd_fold", 1, fold, deterministic=True)  # for search
        self.mark_interrupted()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("The chat history is already closed.", "Restart Herd.")
        return self._conn

    @contextmanager
    def _write(self, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Connection]:
        conn = self._db()
        try:
            conn.execute(begin)
            yield conn
            conn.execute("COMMIT")
        except BaseException as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # ProgrammingError (wrong thread, closed) is a bug, not the user's problem.
            if isinstance(error, sqlite3.Error) and not isinstance(error, sqlite3.ProgrammingError):
                raise store_failure(self.path, error) from error
            raise

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._write("BEGIN DEFERRED") as conn:
            return conn.execute(sql, params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in its own transaction; returns the changed row count."""
        with self._write() as conn:
            return conn.execute(sql, params).rowcount

    def now(self) -> float:
        """The store's clock (Unix seconds): what it stamps activity with."""
        return self._clock()

    def close(self) -> None:
        """Close the file; further calls raise :class:`StoreError`. Safe to call twice."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ChatStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def create_conversation(
        self, title: str = DEFAULT_TITLE, system_prompt: str = ""
    ) -> Conversation:
        """Start a conversation; it is the newest one."""
        now = self._clock()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO conversations (title, system_prompt, created_at, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (title.strip() or DEFAULT_TITLE, system_prompt, now, now),
            )
        return self.get(int(cursor.lastrowid or 0))

    def list_conversations(self, query: str = "") -> list[Conversation]:
        """Conversations not deleted, newest activity first.

        Args:
            query: Keep only those whose title or any message contains it (any case).
        """
        return [conversation_from_row(row) for row in self._rows(*conversations_query(query))]

    def get(self, conversation_id: int) -> Conversation:
        """One conversation, deleted or not.

        Raises:
            ConversationNotFoundError: It was purged or never existed.
        """
        rows = self._rows("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if not rows:
            raise ConversationNotFoundError(
                "That conversation no longer exists.", "Pick another one in the sidebar."
            )
        return conversation_from_row(rows[0])

    def _update_conversation(self, conversation_id: int, column: str, value: Any) -> None:
        if not self._execute(
            f"UPDATE conversations SET {column} = ? WHERE id = ?", (value, conversation_id)
        ):
            self.get(conversation_id)  # raises ConversationNotFoundError

    def rename(self, conversation_id: int, title: str) -> None:
        """Change a title (an empty one becomes "New chat")."""
        self._update_conversation(conversation_id, "title", title.strip() or DEFAULT_TITLE)

    def set_system_prompt(self, conversation_id: int, system_prompt: str) -> None:
        """Change a conversation's own system prompt ("" for none)."""
        self._update_conversation(conversation_id, "system_prompt", system_prompt)

    def set_overflow_policy(self, conversation_id: int, policy: OverflowPolicy | str) -> None:
        """Change what the conversation does when it outgrows the context.

        Raises:
            StoreError: ``policy`` is not an :class:`OverflowPolicy`.
        """
        try:
            value = OverflowPolicy(policy)
        except ValueError:
            raise StoreError(
                f"Unknown overflow policy {policy!r}.",
                "Use one of: " + ", ".join(p.value for p in OverflowPolicy) + ".",
            ) from None
        self._update_conversation(conversation_id, "overflow_policy", value.value)

    def set_sampling(self, conversation_id: int, sampling: SamplingSettings | None) -> None:
        """Give a conversation its own sampling settings (None: back to the app's defaults)."""
        self._update_conversation(conversation_id, "sampling", sampling_to_text(sampling))

    def delete(self, conversation_id: int) -> DeleteToken:
        """Hide a conversation until :meth:`undo_delete` or :meth:`purge_deleted`."""
        now = self._clock()
        self._update_conversation(conversation_id, "deleted_at", now)
        return DeleteToken(conversation_id, now)

    def undo_delete(self, token: DeleteToken) -> bool:
        """Bring back a deleted conversation; False if it was purged meanwhile."""
        sql = "UPDATE conversations SET deleted_at = NULL WHERE id = ? AND deleted_at = ?"
        return bool(self._execute(sql, (token.conversation_id, token.deleted_at)))

    def purge_deleted(self, older_than: float | None = None) -> int:
        """Remove deleted conversations for good (those deleted before ``older_than``).

        Returns:
            How many conversations were removed, with their messages.
        """
        sql = "DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at < ?"
        return self._execute(sql, (float("inf") if older_than is None else older_than,))

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        """A conversation's messages, oldest first (streaming and incomplete ones too)."""
        rows = self._rows(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY position",
            (conversation_id,),
        )
        return [message_from_row(row) for row in rows]

    def message(self, message_id: int) -> StoredMessage:
        """One message.

        Raises:
            ConversationNotFoundError: It was removed.
        """
        rows = self._rows(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise ConversationNotFoundError("That message no longer exists.")
        return message_from_row(rows[0])

    def add_message(
        self,
        conversation_id: int,
        message: ChatMessage,
        state: MessageState = MessageState.COMPLETE,
        *,
        pinned: bool = False,
        stats: ReplyStats | None = None,
    ) -> int:
        """Append a message (saved at once) and make the conversation the newest.

        Returns:
            The message's id.

        Raises:
            ConversationNotFoundError: The conversation was purged.
        """
        self.get(conversation_id)
        now = self._clock()
        with self._write() as conn:
            (position,) = conn.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM messages WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
            stored = new_message(conversation_id, position, message, state, pinned, now, stats)
            cursor = conn.execute(INSERT_MESSAGE, message_to_row(stored, keep_id=False))
            conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
        return int(cursor.lastrowid or 0)

    def begin_reply(self, conversation_id: int) -> int:
        """Save an empty assistant reply in state STREAMING; returns its id."""
        return self.add_message(
            conversation_id, ChatMessage(Role.ASSISTANT, ""), MessageState.STREAMING
        )

    def reopen_reply(self, message_id: int) -> StoredMessage:
        """Make a saved assistant reply STREAMING again, to continue it; returns it as it was.

        Raises:
            ConversationNotFoundError: The message is gone or is not an assistant reply.
        """
        before = self.message(message_id)
        if before.role is not Role.ASSISTANT or not self._execute(
            "UPDATE messages SET state = 'streaming' WHERE id = ?", (message_id,)
        ):
            raise ConversationNotFoundError("That reply can no longer be continued.")
        return before

    def update_reply(self, message_id: int, text: str) -> None:
        """Save a streaming reply's text so far (one small UPDATE; call about once a second).

        Raises:
            ConversationNotFoundError: The reply is gone or no longer streaming.
        """
        if not self._execute(
            "UPDATE messages SET content = ? WHERE id = ? AND state = 'streaming'",
            (text, message_id),
        ):
            raise ConversationNotFoundError("The reply being written is no longer saved.")

    def finish_reply(
        self,
        message_id: int,
        text: str,
        stats: ReplyStats | None = None,
        state: MessageState = MessageState.COMPLETE,
        *,
        expects_tool_result: bool = False,
    ) -> None:
        """Save a reply's final text and stats (INCOMPLETE when the engine failed).

        ``expects_tool_result``: the reply ended with ``<|eom|>`` and is rendered so again.

        Raises:
            ConversationNotFoundError: The reply was removed.
        """
        if MessageState(state) is MessageState.STREAMING:
            raise StoreError("A finished reply cannot still be streaming.")
        stats = stats or ReplyStats()
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE messages SET content = ?, state = ?, tok_s = ?, prompt_tokens = ?, "
                "generated_tokens = ?, expects_tool_result = ?, first_token_s = ?, "
                "stop_reason = ? WHERE id = ?",
                (text, MessageState(state).value, stats.tok_s, stats.prompt_tokens,
                 stats.generated_tokens, int(expects_tool_result), stats.first_token_s,
                 stats.stop_reason, message_id),
            ).rowcount  # fmt: skip
            conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = "
                "(SELECT conversation_id FROM messages WHERE id = ?)",
                (self._clock(), message_id),
            )
        if not changed:
            raise ConversationNotFoundError("The reply was removed before it finished.")

    def set_pinned(self, message_id: int, pinned: bool) -> None:
        """Pin a message (never dropped when the context overflows) or unpin it."""
        if not self._execute("UPDATE messages SET pinned = ? WHERE id = ?", (pinned, message_id)):
            raise ConversationNotFoundError("That message no longer exists.")

    def mark_interrupted(self) -> int:
        """Mark every STREAMING reply INCOMPLETE (run on open: its writer died); how many."""
        return self._execute("UPDATE messages SET state = 'incomplete' WHERE state = 'streaming'")

    def truncate_after(self, conversation_id: int, position: int) -> Removed:
        """Remove every message after ``position`` (-1: all), for regenerate or edit.

        Returns:
            The removed messages; pass them to :meth:`restore` to undo.
        """
        removed = [m for m in self.messages(conversation_id) if m.position > position]
        self._execute(
            "DELETE FROM messages WHERE conversation_id = ? AND position > ?",
            (conversation_id, position),
        )
        return Removed(conversation_id, tuple(removed))

    def restore(self, removed: Removed) -> None:
        """Undo :meth:`truncate_after`: messages added since in their place are dropped.

        Raises:
            ConversationNotFoundError: The conversation was purged.
        """
        if not removed.messages:
            return
        self.get(removed.conversation_id)
        first = min(m.position for m in removed.messages)
        with self._write() as conn:
            conn.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND position >= ?",
                (removed.conversation_id, first),
            )
            conn.executemany(INSERT_MESSAGE, [message_to_row(m) for m in removed.messages])

    def image_refs(self) -> set[str]:
        """Every image ref any stored message names (deleted-but-undoable chats too)."""
        refs: set[str] = set()
        for (images,) in self._rows("SELECT images FROM messages WHERE images != '[]'"):
            refs.update(json.loads(images))
        return refs

    def prompt(self, conversation_id: int) -> tuple[list[ChatMessage], frozenset[int]]:
        """The conversation as a prompt, system prompt first; and the indices never dropped."""
        pairs = prompt_pairs(self.get(conversation_id), self.messages(conversation_id))
        return [m for m, _ in pairs], frozenset(i for i, (_, pin) in enumerate(pairs) if pin)

    def to_chat_messages(self, conversation_id: int) -> list[ChatMessage]:
        """The conversation as a prompt: its system prompt (if any) first, then messages."""
        return self.prompt(conversation_id)[0]

    def get_state(self, key: str, default: str | None = None) -> str | None:
        """A saved UI value (e.g. the open conversation id, base64 window geometry)."""
        rows = self._rows("SELECT value FROM ui_state WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_state(self, key: str, value: str | None) -> None:
        """Save a UI value; None removes it."""
        if value is None:
            self._execute("DELETE FROM ui_state WHERE key = ?", (key,))
        else:
            self._execute(
                "INSERT INTO ui_state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
