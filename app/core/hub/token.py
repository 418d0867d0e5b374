"""The Hugging Face token: in the OS keyring where there is one, else a file only we can read.

The token is never logged: only whether one is stored, and where.
"""

from __future__ import annotations

import importlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

from app.core.hub.errors import HubError

logger = logging.getLogger(__name__)

SERVICE = "Herd"
USERNAME = "huggingface-token"


def _usable_keyring() -> Any | None:
    """The ``keyring`` module when it is installed and has a real backend."""
    try:
        keyring = importlib.import_module("keyring")
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - no keyring, or a broken one: use the file
        return None
    priority = getattr(backend, "priority", 0)
    name = type(backend).__name__.lower()
    if priority <= 0 or "fail" in name or "null" in name:
        return None
    return keyring


class TokenStore:
    """Save, read and forget the token; ``keyring`` is injectable for tests (None: a file)."""

    def __init__(self, file: Path, keyring: Any | None | bool = True) -> None:
        self.file = file
        self._keyring = _usable_keyring() if keyring is True else (keyring or None)

    @property
    def where(self) -> str:
        """Where the token is kept, for people."""
        return "the system keyring" if self._keyring else str(self.file)

    def get(self) -> str | None:
        """The stored token, or None."""
        if self._keyring is not None:
            try:
                value = self._keyring.get_password(SERVICE, USERNAME)
                if value:
                    return value
            except Exception as exc:  # noqa: BLE001 - a locked keyring: fall back to the file
                logger.info("keyring unavailable: %s", type(exc).__name__)
        try:
            return self.file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def set(self, token: str) -> None:
        """Store ``token`` (stripped).

        Raises:
            HubError: an empty token, or it cannot be written.
        """
        token = token.strip()
        if not token or any(c.isspace() for c in token):
            raise HubError("That is not a Hugging Face token.", "Paste a token that starts hf_.")
        if self._keyring is not None:
            try:
                self._keyring.set_password(SERVICE, USERNAME, token)
                self.file.unlink(missing_ok=True)
                logger.info("token stored in the keyring")
                return
            except Exception as exc:  # noqa: BLE001 - fall back to the file
                logger.info("keyring refused the token (%s); using a file", type(exc).__name__)
        self.file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, token.encode())
        finally:
            os.close(fd)
        os.chmod(self.file, stat.S_IRUSR | stat.S_IWUSR)  # also when the file already existed
        logger.info("token stored in %s", self.file)

    def clear(self) -> None:
        """Forget the token everywhere."""
        if self._keyring is not None:
            try:
                self._keyring.delete_password(SERVICE, USERNAME)
            except Exception:  # noqa: BLE001, S110 - nothing stored there
                pass
        self.file.unlink(missing_ok=True)
