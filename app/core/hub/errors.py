"""What can go wrong talking to the Hub or writing a download, in words for people."""

from __future__ import annotations

from app.core.errors import HerdError


class HubError(HerdError):
    """Base of every Hub and download error."""


class HubOfflineError(HubError, ConnectionError):
    """The Hub cannot be reached (no network, DNS, proxy), or offline mode is on."""


class RepoNotFoundError(HubError, LookupError):
    """No such repository or file on the Hub."""


class GatedRepoError(HubError, PermissionError):
    """The repository needs a token, or the token has no access yet."""

    def __init__(self, user_message: str, hint: str = "", repo_id: str = "") -> None:
        super().__init__(user_message, hint)
        self.repo_id = repo_id


class DiskSpaceError(HubError, OSError):
    """Not enough free disk space for a download; ``shortfall`` is the missing bytes."""

    def __init__(self, user_message: str, hint: str = "", shortfall: int = 0) -> None:
        super().__init__(user_message, hint)
        self.shortfall = shortfall


class ChecksumError(HubError, ValueError):
    """A downloaded file's sha256 is not the one the Hub published: the data is damaged."""


class FileChangedError(HubError):
    """A file changed on the Hub since its repository was listed (its hash differs)."""
