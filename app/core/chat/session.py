"""ChatSession: the open conversation, kept in step with the SQLite store.

The window talks to a session, never to SQL: every message is saved when it is created,
a streaming reply is saved at most ``save_interval`` seconds apart (so a crash loses at
most that much), and edits and regenerations can be undone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.chat.continuation import continuable
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.store import ChatStore
from app.core.chat.store_file import BUSY_TIMEOUT_S, recover_history
from app.core.chat.store_schema import (
    Conversation,
    DeleteToken,
    MessageState,
    Removed,
    ReplyStats,
    StoreBusyError,
    StoreCorruptError,
    StoredMessage,
)
from app.core.errors import HerdError
from app.core.settings import SamplingSettings

logger = logging.getLogger(__name__)

SAVE_INTERVAL_S = 0.5  # a streaming reply is saved at least this often (issue: >= 1/s)
TITLE_CHARS = 48
OPEN_STATE_KEY = "open_conversation"
BUSY_ATTEMPTS = 3  # with BUSY_TIMEOUT_S: a locked history is waited for up to 15 s
BUSY_NOTE = "The chat history is in use by another program; waiting…"


class SessionError(HerdError, RuntimeError):
    """The session was asked for something its state does not allow."""


@dataclass(frozen=True, slots=True)
class Undo:
    """What :meth:`ChatSession.undo` needs to put removed messages back."""

    removed: Removed
    description: str


def title_from(text: str) -> str:
    """A conversation title from its first message: the first line, shortened at a word."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0] or line[:TITLE_CHARS]
    return cut.rstrip(",.;:") + "…"


def open_history(
    path: Path,
    *,
    busy_timeout: float = BUSY_TIMEOUT_S,
    attempts: int = BUSY_ATTEMPTS,
    on_busy: Callable[[str], None] | None = None,
) -> tuple[ChatStore, str]:
    """Open the chat history: wait out another program's lock, recover a damaged file.

    A damaged file is set aside (kept, never deleted) after every conversation and message
    that can still be read is copied into a new history (:func:`recover_history`).

    Args:
        path: The SQLite file, usually ``AppPaths.chats_db``.
        busy_timeout: Seconds one try waits for another program's lock.
        attempts: Tries before giving up on a lock (at most ``attempts * busy_timeout``).
        on_busy: Told, before each further try, that the file is in use and Herd waits.

    Returns:
        The store, and a note for the person ("" when all was well).

    Raises:
        StoreVersionError: A newer Herd wrote the file; it is left untouched. Show it, and
            do not start a new history over it.
        StoreBusyError: Another program still holds the file; nothing was changed. Show
            it and offer to try again.
        StoreError: The file or its folder cannot be written.
    """
    for attempt in range(1, attempts + 1):
        try:
            return ChatStore(path, busy_timeout=busy_timeout), ""
        except StoreBusyError as exc:
            logger.warning("chat history busy (try %d of %d): %s", attempt, attempts, exc)
            if attempt >= attempts:
                raise
            if on_busy is not None:
                on_busy(f"{BUSY_NOTE} (try {attempt + 1} of {attempts})")
        except StoreCorruptError as exc:
            logger.error("chat history damaged (%s); recovering what can be read", exc)
            report = recover_history(path, busy_timeout=busy_timeout)
            return ChatStore(path, busy_timeout=busy_timeout), report.note()
    raise ValueError(f"attempts must be at least 1, not {attempts}")


class ChatSession:
    """The conversation on screen and its streaming reply, saved as they change."""

    def __init__(
        self,
        store: ChatStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        save_interval: float = SAVE_INTERVAL_S,
    ) -> None:
        self.store = store
        self._clock = clock
        self._save_interval = save_interval
        self._conversation: Conversation | None = None
        self._draft_sampling: SamplingSettings | None = None  # a new chat's, until it is saved
        self._reply_id: int | None = None
        self._continued: StoredMessage | None = None  # the reply being continued, as it was
        self._reply_text = ""
        self._saved_at = 0.0
        self._saved_text = ""

    # -- which conversation ------------------------------------------------------------
    @property
    def conversation(self) -> Conversation | None:
        """The open conversation (None before the first message of a new chat)."""
        return self._conversation

    @property
    def conversation_id(self) -> int | None:
        """The open conversation's id, if it is saved yet."""
        return self._conversation.id if self._conversation else None

    def restore_last(self) -> Conversation | None:
        """Open the conversation that was open when Herd last closed, if it still exists."""
        value = self.store.get_state(OPEN_STATE_KEY)
        if value and value.isdigit():
            for conversation in self.store.list_conversations():
                if conversation.id == int(value):
                    return self.open(conversation.id)
        return None

    def open(self, conversation_id: int) -> Conversation:
        """Make a saved conversation the open one."""
        self._end_reply_if_any()
        self._conversation = self.store.get(conversation_id)
        self.store.set_state(OPEN_STATE_KEY, str(conversation_id))
        return self._conversation

    def new(self) -> None:
        """Start a new chat; it is saved with its first message, not before."""
        self._end_reply_if_any()
        self._conversation = None
        self._draft_sampling = None  # a new chat starts on the defaults
        self.store.set_state(OPEN_STATE_KEY, None)

    def refresh(self) -> Conversation | None:
        """Re-read the open conversation (after a rename or a new system prompt)."""
        if self._conversation is not None:
            self._conversation = self.store.get(self._conversation.id)
        return self._conversation

    def set_system_prompt(self, text: str) -> None:
        """The open conversation's own system prompt (creates the conversation if new)."""
        conversation = self._ensure_conversation("")
        self.store.set_system_prompt(conversation.id, text)
        self.refresh()

    @property
    def sampling(self) -> SamplingSettings | None:
        """The open conversation's own sampling settings; None: it uses the app's defaults."""
        if self._conversation is None:
            return self._draft_sampling
        return self._conversation.sampling

    def set_sampling(self, sampling: SamplingSettings | None) -> None:
        """Give the open conversation its own sampling (None: back to the defaults).

        A new chat keeps them until its first message saves it.
        """
        if self._conversation is None:
            self._draft_sampling = sampling
            return
        self.store.set_sampling(self._conversation.id, sampling)
        self.refresh()

    # -- messages --------------------------------------------------------------------
    def messages(self) -> list[StoredMessage]:
        """The open conversation's messages as saved, oldest first."""
        if self._conversation is None:
            return []
        return self.store.messages(self._conversation.id)

    def prompt(self) -> tuple[list[ChatMessage], frozenset[int]]:
        """What the model is sent (system prompt first), and the indices never to drop."""
        if self._conversation is None:
            return [], frozenset()
        return self.store.prompt(self._conversation.id)

    def add_user(
        self,
        text: str,
        images: Sequence[str] = (),
        *,
        system: str = "",
        image_offsets: Sequence[int] = (),
    ) -> int:
        """Save the person's message (a new chat is created and titled by it).

        ``image_offsets``: where each image sits in ``text`` (see
        :attr:`ChatMessage.image_offsets`); empty puts every image first.
        """
        message = ChatMessage(Role.USER, text, tuple(images), image_offsets=tuple(image_offsets))
        conversation = self._ensure_conversation(title_from(text) or "Image", system)
        return self.store.add_message(conversation.id, message)

    def _ensure_conversation(self, title: str, system: str = "") -> Conversation:
        if self._conversation is None:
            self._conversation = self.store.create_conversation(title or "New chat", system)
            self.store.set_state(OPEN_STATE_KEY, str(self._conversation.id))
            if self._draft_sampling is not None:
                self.set_sampling(self._draft_sampling)
                self._draft_sampling = None
        elif title and not self.store.messages(self._conversation.id):
            self.store.rename(self._conversation.id, title)  # untitled until its first message
            self.refresh()
        return self._conversation

    # -- the reply being written ---------------------------------------------------------
    @property
    def replying(self) -> bool:
        """Whether a reply is being streamed (and saved as it grows)."""
        return self._reply_id is not None

    @property
    def reply_text(self) -> str:
        """The streaming reply's text so far."""
        return self._reply_text

    def begin_reply(self) -> int:
        """Save an empty streaming reply in the open conversation."""
        if self._conversation is None:
            raise SessionError("There is no conversation to reply in.", "Send a message first.")
        self._end_reply_if_any()
        self._reply_id = self.store.begin_reply(self._conversation.id)
        self._reply_text = ""
        self._saved_text = ""
        self._saved_at = self._clock()
        return self._reply_id

    def continuable(self) -> StoredMessage | None:
        """The last reply, when Continue can extend it (see :func:`continuable`)."""
        return continuable(self.messages())

    def begin_continue(self) -> StoredMessage:
        """Stream into the last reply again, after its text; returns the reply as it was.

        Take :meth:`prompt` first: a reply being written is not part of the prompt.

        Raises:
            SessionError: The last message is not a reply that can be continued.
        """
        last = self.continuable()
        if last is None:
            raise SessionError("There is no reply to continue.", "Send a message first.")
        self._end_reply_if_any()
        self._continued = self.store.reopen_reply(last.id)
        self._reply_id = last.id
        self._reply_text = self._saved_text = last.content
        self._saved_at = self._clock()
        return last

    @property
    def continued(self) -> StoredMessage | None:
        """The reply being continued, as it was before (None for a new reply)."""
        return self._continued

    def append_reply(self, text: str) -> bool:
        """Add streamed text; returns True when this call saved the reply to disk."""
        if self._reply_id is None:
            return False
        self._reply_text += text
        if self._clock() - self._saved_at >= self._save_interval:
            return self.flush()
        return False

    def flush(self) -> bool:
        """Save the streaming reply now if it changed since the last save."""
        if self._reply_id is None or self._reply_text == self._saved_text:
            return False
        self.store.update_reply(self._reply_id, self._reply_text)
        self._saved_text = self._reply_text
        self._saved_at = self._clock()
        return True

    def finish_reply(
        self,
        text: str | None = None,
        stats: ReplyStats | None = None,
        state: MessageState = MessageState.COMPLETE,
        *,
        expects_tool_result: bool = False,
    ) -> None:
        """Save the reply's final text (``None``: the streamed text) and stats.

        Args:
            text: The final text; None keeps what was streamed.
            stats: How it was generated.
            state: COMPLETE, or INCOMPLETE when it was cut short.
            expects_tool_result: The model ended the reply with ``<|eom|>`` (a tool call
                waiting for its result); the prompt renders it ending so again.
        """
        if self._reply_id is None:
            return
        final = self._reply_text if text is None else text
        reply_id, self._reply_id = self._reply_id, None
        before, self._continued = self._continued, None
        if stats is None and before is not None:
            stats = before.stats  # a continuation cut short keeps the reply's figures
        self.store.finish_reply(
            reply_id, final, stats, state, expects_tool_result=expects_tool_result
        )
        self._reply_text = ""

    def interrupt_reply(self) -> None:
        """The engine died or failed: keep what was written, marked incomplete."""
        self.finish_reply(None, None, MessageState.INCOMPLETE)

    def _end_reply_if_any(self) -> None:
        if self._reply_id is not None:
            self.interrupt_reply()

    # -- regenerate, edit, undo ---------------------------------------------------------
    def take_last_reply(self) -> Undo:
        """Remove the last reply (to write a new one); undo puts it back."""
        messages = self.messages()
        last_user = max((m.position for m in messages if m.role is Role.USER), default=None)
        if last_user is None or self._conversation is None:
            raise SessionError("There is no reply to regenerate.")
        removed = self.store.truncate_after(self._conversation.id, last_user)
        return Undo(removed, "Regenerated the reply")

    def edit_user_message(self, index: int, text: str) -> Undo:
        """Replace the ``index``-th message (a user message) and remove what followed it."""
        messages = self.messages()
        if self._conversation is None or not 0 <= index < len(messages):
            raise SessionError("That message is no longer in this chat.")
        target = messages[index]
        if target.role is not Role.USER:
            raise SessionError("Only your own messages can be edited.")
        # The images stay; those that sat at the end of the old text stay at the end.
        end = len(target.content)
        offsets = [len(text) if o == end else min(o, len(text)) for o in target.image_offsets]
        edited = ChatMessage(Role.USER, text, target.images, image_offsets=tuple(offsets))
        removed = self.store.truncate_after(self._conversation.id, target.position - 1)
        self.store.add_message(self._conversation.id, edited)
        return Undo(removed, "Edited a message")

    def undo(self, undo: Undo) -> None:
        """Put back what :meth:`take_last_reply` or :meth:`edit_user_message` removed."""
        self._end_reply_if_any()
        self.store.restore(undo.removed)

    # -- conversations -------------------------------------------------------------------
    def delete(self, conversation_id: int) -> DeleteToken:
        """Delete a conversation (undoable); deleting the open one starts a new chat."""
        if conversation_id == self.conversation_id:
            self.new()
        return self.store.delete(conversation_id)

    def undo_delete(self, token: DeleteToken) -> bool:
        """Bring a deleted conversation back."""
        return self.store.undo_delete(token)
