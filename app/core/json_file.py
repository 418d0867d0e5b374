"""A small JSON file in the app's folders: read forgivingly, written atomically."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def read_json(file: Path, what: str) -> Any:
    """``file``'s JSON; ``{}`` when it is missing or unreadable (the latter with a log line)."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable %s %s: %s", what, file, exc)
        return {}


def write_json(file: Path, data: Any) -> None:
    """Write ``data`` as JSON through a temporary file and a rename.

    Raises:
        OSError: it could not be written; the old file is left as it was.
    """
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f"{file.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, file)
    finally:
        tmp.unlink(missing_ok=True)
