"""Writing a conversation to a Markdown or JSON file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from app.core.chat.store import ChatStore
from app.core.errors import HerdError

FORMATS = ("md", "json")


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
        text = store.export_markdown(conversation_id)
    else:
        text = json.dumps(store.export_json(conversation_id), indent=2, ensure_ascii=False)
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
