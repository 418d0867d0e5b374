"""A conversation as Markdown or JSON, and writing it to a file."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.core.chat.store import ChatStore
from app.core.chat.store_schema import Conversation, MessageState, StoredMessage
from app.core.errors import HerdError

FORMATS = ("md", "json")
EXPORT_FORMAT = "herd.conversation"
EXPORT_VERSION = 1


class ExportError(HerdError, OSError):
    """A conversation could not be written to the file asked for."""


def export_name(title: str, fmt: str) -> str:
    """A safe file name for a conversation's export: its title, then ``.md`` or ``.json``."""
    stem = "".join(c if c.isalnum() or c in " -_" else "_" for c in title).strip()
    return f"{stem or 'chat'}.{fmt}"


def write_export(store: ChatStore, conversation_id: int, fmt: str, target: Path) -> Path:
    """Write the conversation to ``target`` (whole or not at all).

    Raises:
        ExportError: ``fmt`` is unknown, or the file cannot be written (the old file, if
            any, is left as it was).
        StoreError: The conversation cannot be read.
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}.", "Use md or json.")
    if fmt == "md":
        text = export_markdown(store, conversation_id)
    else:
        text = json.dumps(export_json(store, conversation_id), indent=2, ensure_ascii=False)
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(text + "\n", encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ExportError(
            f"Herd could not write {target} ({exc.strerror or exc}).",
            "Choose another folder, or free some disk space.",
        ) from exc
    return target


def export_markdown(store: ChatStore, conversation_id: int) -> str:
    """The conversation as Markdown: a title, then a heading per message."""
    return to_markdown(store.get(conversation_id), store.messages(conversation_id))


def export_json(store: ChatStore, conversation_id: int) -> dict[str, Any]:
    """The conversation and its messages as a JSON-safe dict."""
    return to_json(store.get(conversation_id), store.messages(conversation_id))


def to_markdown(conversation: Conversation, messages: Sequence[StoredMessage]) -> str:
    """A conversation as Markdown: its title, system prompt, then a heading per message."""
    parts = [f"# {conversation.title}"]
    if conversation.system_prompt:
        quoted = "\n".join(f"> {line}" for line in conversation.system_prompt.splitlines())
        parts.append(f"**System prompt**\n\n{quoted}")
    for message in messages:
        block = [f"## {message.role.value.capitalize()}"]
        if message.image_offsets:  # images where they sit in the text
            pieces = message.to_chat_message().pieces()
            refs = [""] + [f"![image]({ref})" for ref in message.images]
            block.append("".join(ref + piece for ref, piece in zip(refs, pieces, strict=True)))
        else:
            block += [f"![image]({ref})" for ref in message.images]
            if message.content:
                block.append(message.content)
        block += [f"`{call.text()}`" for call in message.tool_calls]
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
        "sampling": sampling.to_dict() if (sampling := conversation.sampling) else None,
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
