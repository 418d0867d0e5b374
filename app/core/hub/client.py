"""The one door to the Hub: huggingface_hub's API, headers, session and errors, in Herd's words.

Everything Herd asks the Hub goes through :class:`HubClient`: repository listings with file
metadata (sizes, LFS sha256), search, a file's resolve metadata (``get_hf_file_metadata``)
and a streamed, Range-resumed GET on huggingface_hub's shared HTTP session (which honours
``HTTP(S)_PROXY``). Errors come back as :mod:`app.core.hub.errors`; a token is never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import HfApi, ModelCardData, get_hf_file_metadata, hf_hub_url
from huggingface_hub import errors as hf_errors
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from app.core.hub.errors import GatedRepoError, HubError, HubOfflineError, RepoNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
TOKEN_HINT = "Add a Hugging Face access token (Model Manager > Token, or HF_TOKEN)"
NETWORK_ERRORS = (httpx2.TransportError, hf_errors.OfflineModeIsEnabled)


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Where the Hub is and who we are; built once from the environment and settings."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | bool | None = None  # None: huggingface_hub's own (HF_TOKEN, `hf auth login`)
    offline: bool = False
    timeout_s: float = 20.0

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, token: str | None = None, offline: bool = False
    ) -> HubConfig:
        """``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` from ``environ``; ``token`` from Herd's store."""
        endpoint = (environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        flag = environ.get("HF_HUB_OFFLINE", "").strip().lower()
        env_offline = flag in {"1", "true", "yes", "on"}
        return cls(endpoint=endpoint, token=token, offline=offline or env_offline)


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One file of a repository, as the Hub's file metadata describes it."""

    name: str
    size: int
    sha256: str | None  # the LFS object's sha256; None for a small file stored in git


@dataclass(frozen=True, slots=True)
class RepoListing:
    """A repository at one commit: its files and whether it is gated."""

    repo_id: str
    commit: str
    files: tuple[RemoteFile, ...]
    gated: bool = False
    license: str = ""  # the Hub's licence id ("llama4", "apache-2.0"); "" when not stated
    downloads: int | None = None  # the Hub's count for the last 30 days; None when unknown


@dataclass(frozen=True, slots=True)
class RepoSummary:
    """One search hit."""

    repo_id: str
    downloads: int = 0
    likes: int = 0
    gated: bool = False
    last_modified: datetime | None = None
    license: str = ""


@dataclass(frozen=True, slots=True)
class FileLocation:
    """Where a file's bytes are (maybe a CDN), its etag, size and the commit it resolves to."""

    url: str
    location: str
    etag: str | None
    size: int | None
    commit: str | None


class HubClient:
    """huggingface_hub configured for one endpoint and token; every call may raise HubError."""

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self._api = HfApi(endpoint=config.endpoint, token=config.token)

    # --- metadata -----------------------------------------------------------------------

    def listing(self, repo_id: str, revision: str = "main") -> RepoListing:
        """The repository's files with sizes and LFS sha256 (``model_info``, file metadata)."""
        self._online(f"list {repo_id}")
        with translate_errors(repo_id):
            info = self._api.model_info(
                repo_id, revision=revision, files_metadata=True, timeout=self.config.timeout_s
            )
        files = tuple(
            RemoteFile(
                name=s.rfilename,
                size=(s.lfs.size if s.lfs else s.size) or 0,
                sha256=s.lfs.sha256 if s.lfs else None,
            )
            for s in info.siblings or ()
        )
        return RepoListing(
            repo_id,
            info.sha or revision,
            files,
            gated=bool(info.gated),
            license=licence_id(info.card_data, info.tags),
            downloads=info.downloads,
        )

    def search(self, query: str, limit: int = 40) -> list[RepoSummary]:
        """GGUF repositories whose name matches ``query``, most downloaded first."""
        self._online("search the Hub")
        with translate_errors(""):
            hits = self._api.list_models(
                search=query or None, filter="gguf", sort="downloads", limit=limit
            )
            return [
                RepoSummary(
                    m.id,
                    downloads=m.downloads or 0,
                    likes=m.likes or 0,
                    gated=bool(m.gated),
                    last_modified=m.last_modified,
                    license=licence_id(None, m.tags),
                )
                for m in hits
            ]

    def locate(self, repo_id: str, filename: str, revision: str = "main") -> FileLocation:
        """Resolve a file (HEAD, following Hub redirects): location, etag, size, commit."""
        self._online(f"download {filename}")
        url = hf_hub_url(repo_id, filename, revision=revision, endpoint=self.config.endpoint)
        with translate_errors(repo_id, filename):
            meta = get_hf_file_metadata(
                url,
                token=self.config.token,
                endpoint=self.config.endpoint,
                timeout=self.config.timeout_s,
                retry_on_errors=True,
            )
        return FileLocation(url, meta.location, meta.etag, meta.size, meta.commit_hash)

    # --- bytes --------------------------------------------------------------------------

    @contextmanager
    def open_range(
        self, where: FileLocation, start: int, end: int | None = None
    ) -> Iterator[httpx2.Response]:
        """A streamed GET from byte ``start`` (to ``end``, inclusive); 206, or 200 from 0."""
        headers = build_hf_headers(token=self.config.token)
        headers["Accept-Encoding"] = "identity"  # the byte count must be the file's
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        if _origin(where.location) != _origin(self.config.endpoint):
            headers.pop("authorization", None)  # never send the token to a CDN
            headers.pop("Authorization", None)
        timeout = httpx2.Timeout(self.config.timeout_s, read=60.0)
        with translate_errors("", where.url.rsplit("/", 1)[-1]):
            with get_session().stream(
                "GET", where.location, headers=headers, timeout=timeout, follow_redirects=True
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    hf_raise_for_status(response)
                yield response

    def read_range(self, where: FileLocation, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (inclusive) of a file, e.g. a GGUF's header."""
        with self.open_range(where, start, end) as response:
            data = b"".join(response.iter_bytes())
        if response.status_code == 200:  # the server ignored Range
            data = data[start : end + 1]
        return data

    def _online(self, what: str) -> None:
        if self.config.offline:
            raise HubOfflineError(
                f"Offline mode is on, so Herd cannot {what}.",
                "Turn offline mode off to reach the Hub; downloaded models still work.",
            )


def licence_id(card: ModelCardData | None, tags: list[str] | None) -> str:
    """A repository's licence id from its card's metadata, else from its ``license:`` tag.

    A card with ``license: other`` names its own licence in ``license_name`` (Meta's Llama 4
    repositories: ``llama4``).
    """
    if card is not None:
        value = card.get("license")
        value = value[0] if isinstance(value, list) and value else value
        name = card.get("license_name")
        if value == "other" and isinstance(name, str) and name:
            return name
        if isinstance(value, str) and value:
            return value
    for tag in tags or ():
        if tag.startswith("license:"):
            return tag.removeprefix("license:")
    return ""


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


@contextmanager
def translate_errors(repo_id: str, filename: str = "") -> Iterator[None]:
    """Turn huggingface_hub's and httpx2's exceptions into HubError subclasses."""
    what = f"{repo_id}/{filename}" if repo_id and filename else (repo_id or filename or "the Hub")
    try:
        yield
    except hf_errors.GatedRepoError as exc:
        raise GatedRepoError(
            f"{repo_id or what} is gated: it needs a token with access.",
            f"{TOKEN_HINT}, and accept the licence on the repository's page.",
            repo_id=repo_id,
        ) from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise RepoNotFoundError(
            f"Repository {repo_id or what} was not found on the Hub.",
            "Check the name (owner/name); a private repository needs a token.",
        ) from exc
    except (hf_errors.RemoteEntryNotFoundError, hf_errors.RevisionNotFoundError) as exc:
        raise RepoNotFoundError(
            f"{what} was not found on the Hub.", "The repository may have changed; refresh it."
        ) from exc
    except hf_errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise HubError(f"The Hub answered HTTP {status} for {what}.", "Try again later.") from exc
    except NETWORK_ERRORS as exc:
        logger.info("network error for %s: %s", what, type(exc).__name__)
        raise HubOfflineError(
            "The Hugging Face Hub cannot be reached.",
            "Check the network connection (and HTTPS_PROXY, if you use a proxy).",
        ) from exc
    except httpx2.HTTPError as exc:  # redirect loops, undecodable bodies
        raise HubError(
            f"The Hub's answer for {what} made no sense ({exc}).", "Try again later."
        ) from exc
