"""A stored message as the transcript shows it, and the small line under a reply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.core import events as ev
from app.core.chat import attachments
from app.core.chat.messages import Role
from app.core.chat.store_schema import MessageState, StoredMessage
from app.core.errors import HerdError
from app.core.paths import AppPaths

_STOP_NOTES = {
    ev.StopReason.MAX_TOKENS: "reached the length limit",
    ev.StopReason.CONTEXT_FULL: "context is full",
    ev.StopReason.USER: "stopped",
}


INCOMPLETE_NOTE = "incomplete: the reply was cut off"


@dataclass(frozen=True, slots=True)
class ShownMessage:
    """A stored message as the transcript shows it (:meth:`ChatView.load_messages`).

    Attributes:
        role: Who wrote it.
        text: Its Markdown.
        footer: The small line under it: time, speed, and a note such as "incomplete".
        images: Image files shown as thumbnails above the text.
    """

    role: Role
    text: str
    footer: str = ""
    images: tuple[str, ...] = ()

    @classmethod
    def from_stored(cls, message: StoredMessage, paths: AppPaths | None = None) -> ShownMessage:
        """A saved message with its footer (time, speed, "incomplete") and image files."""
        parts: list[str] = []
        if message.role is Role.ASSISTANT:
            parts.append(datetime.fromtimestamp(message.created_at).strftime("%H:%M"))
            stats = message.stats
            parts += reply_notes(
                stats.generated_tokens, stats.tok_s, stats.first_token_s, stats.stop_reason
            )
            if message.state is MessageState.INCOMPLETE:
                parts.append(INCOMPLETE_NOTE)
        images = tuple(image_file(paths, ref) for ref in message.images)
        return cls(message.role, message.content, "  ·  ".join(parts), images)


def reply_notes(
    tokens: int | None, tok_s: float | None, first_token_s: float | None, stop_reason: str
) -> list[str]:
    """A reply's footer notes: its length, speed, first word's wait, and why it stopped."""
    notes = []
    if tokens:
        notes.append(f"{tokens:,} tokens")
    if tok_s:
        notes.append(f"{tok_s:.1f} tok/s")
    if first_token_s:
        notes.append(f"first word after {first_token_s:.2f} s")
    try:
        note = _STOP_NOTES.get(ev.StopReason(stop_reason)) if stop_reason else None
    except ValueError:  # a reason from a newer Herd
        note = None
    if note:
        notes.append(note)
    return notes


def image_file(paths: AppPaths | None, ref: str) -> str:
    """A stored image ref as a file the transcript can show (a missing one stays a ref)."""
    if paths is None:
        return ref
    try:
        return str(attachments.resolve(paths, ref))
    except HerdError:
        return ref
