"""Download requests, their events and the persisted queue that survives a restart."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.core.hub.catalog import QuantOption, RepoQuants
from app.core.hub.client import RemoteFile
from app.core.hub.transfer import write_atomic, write_error
from app.core.jobs import CancelToken

logger = logging.getLogger(__name__)

QUEUE_FILE = "queue.json"


class JobState(StrEnum):
    """Where a download stands."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class DownloadControl(CancelToken):
    """A CancelToken that tells a pause (keep the partial data) from a cancel (delete it)."""

    def __init__(self) -> None:
        super().__init__()
        self.discard = False

    def pause(self) -> None:
        """Stop at the next chunk; the partial files stay for a resume."""
        super().cancel()

    def cancel(self) -> None:
        """Stop at the next chunk and delete the partial files (the user confirmed)."""
        self.discard = True
        super().cancel()


@dataclass(frozen=True, slots=True)
class DownloadRequest:
    """The files of one model (all split parts, maybe a projector) from one repository."""

    repo_id: str
    revision: str
    files: tuple[RemoteFile, ...]
    quant: str = ""
    commit: str = ""
    projector_file: str = ""

    @property
    def key(self) -> str:
        """Identifies the request in the queue."""
        return f"{self.repo_id}@{self.revision}:{self.quant or self.model_file}"

    @property
    def model_file(self) -> str:
        """The file to load: the first model file (part 1 of a split model)."""
        return next(f.name for f in self.files if f.name != self.projector_file)

    @property
    def title(self) -> str:
        """``owner/name Q4_K_M``, for people."""
        return f"{self.repo_id} {self.quant}".strip()

    @property
    def total(self) -> int:
        """Bytes of all files."""
        return sum(f.size for f in self.files)

    @classmethod
    def for_quant(
        cls, repo: RepoQuants, option: QuantOption, *, projector: bool = True
    ) -> DownloadRequest:
        """The request for ``option`` of ``repo``, with its projector unless told otherwise."""
        proj = repo.projector_for(option) if projector else None
        files = option.files + ((proj,) if proj else ())
        return cls(
            repo.repo_id,
            "main",
            files,
            quant=option.quant,
            commit=repo.commit,
            projector_file=proj.name if proj else "",
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for the queue file)."""
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "quant": self.quant,
            "commit": self.commit,
            "projector_file": self.projector_file,
            "files": [[f.name, f.size, f.sha256] for f in self.files],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DownloadRequest:
        """The inverse of :meth:`to_json`."""
        files = tuple(RemoteFile(n, int(s), h) for n, s, h in data["files"])
        return cls(
            data["repo_id"],
            data.get("revision", "main"),
            files,
            quant=data.get("quant", ""),
            commit=data.get("commit", ""),
            projector_file=data.get("projector_file", ""),
        )


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """Bytes done of the current file and of the whole request, speed and ETA."""

    key: str
    filename: str
    file_done: int
    file_total: int
    done: int
    total: int
    speed_bps: float
    eta_s: float | None
    phase: str  # "checking" (hashing a resumed part), "downloading", "verifying"

    @property
    def fraction(self) -> float:
        """Done over total, in [0, 1]."""
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True, slots=True)
class DownloadDone:
    """Every file is verified and in the cache; ``path`` is the file to load."""

    key: str
    path: Path
    projector: Path | None = None


@dataclass(frozen=True, slots=True)
class DownloadStopped:
    """The job ended early: paused, cancelled or failed (``message`` and ``hint`` for people)."""

    key: str
    state: JobState
    message: str
    hint: str = ""
    needs_token: bool = False  # a gated repository: ask for a token, then retry
    error: str = ""  # the HerdError class name, for callers that branch on it


DownloadEvent = DownloadProgress | DownloadDone | DownloadStopped


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A request and where it stands."""

    request: DownloadRequest
    state: JobState = JobState.QUEUED
    message: str = ""
    path: str = ""  # the model file, once done


@dataclass(slots=True)
class DownloadQueue:
    """The ordered downloads, saved to ``folder/queue.json`` after every change.

    A queue loaded after a crash or restart turns RUNNING entries back into QUEUED: the
    partial files are still there and the next run resumes them. A change that cannot be
    saved (a full disk) raises a HubError from :meth:`save`; the file keeps its last state.
    """

    folder: Path
    entries: list[QueueEntry] = field(default_factory=list)

    @classmethod
    def load(cls, folder: Path) -> DownloadQueue:
        """The queue saved in ``folder`` (empty when there is none or it is unreadable)."""
        queue = cls(folder)
        try:
            data = json.loads((folder / QUEUE_FILE).read_text(encoding="utf-8"))
            for item in data.get("entries", []):
                state = JobState(item.get("state", "queued"))
                if state is JobState.RUNNING:
                    state = JobState.QUEUED
                request = DownloadRequest.from_json(item["request"])
                queue.entries.append(
                    QueueEntry(request, state, item.get("message", ""), item.get("path", ""))
                )
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("download queue unreadable, starting empty: %s", exc)
        return queue

    def save(self) -> None:
        """Write the queue atomically (temporary file, fsync, rename).

        Raises:
            DiskSpaceError: the disk is full; the queue file on disk is unchanged.
            HubError: the folder cannot be written for another reason (also unchanged).
        """
        data = {
            "entries": [
                {
                    "request": e.request.to_json(),
                    "state": e.state.value,
                    "message": e.message,
                    "path": e.path,
                }
                for e in self.entries
            ]
        }
        try:
            write_atomic(self.folder / QUEUE_FILE, json.dumps(data, indent=1))
        except OSError as exc:
            logger.warning("download queue not saved in %s: %s", self.folder, exc)
            raise write_error(exc, self.folder, "the download queue") from exc

    def get(self, key: str) -> QueueEntry | None:
        """The entry for ``key``."""
        return next((e for e in self.entries if e.request.key == key), None)

    def add(self, request: DownloadRequest) -> QueueEntry:
        """Queue ``request`` (a request already queued is queued again, not duplicated)."""
        entry = self.get(request.key)
        if entry is not None and entry.state in (JobState.QUEUED, JobState.RUNNING):
            return entry
        self.entries = [e for e in self.entries if e.request.key != request.key]
        entry = QueueEntry(request)
        self.entries.append(entry)
        self.save()
        return entry

    def update(self, key: str, state: JobState, message: str = "", path: str = "") -> None:
        """Set an entry's state (and message, path)."""
        self.entries = [
            replace(e, state=state, message=message, path=path or e.path)
            if e.request.key == key
            else e
            for e in self.entries
        ]
        self.save()

    def remove(self, key: str) -> None:
        """Drop an entry."""
        self.entries = [e for e in self.entries if e.request.key != key]
        self.save()

    def next_queued(self) -> QueueEntry | None:
        """The first entry waiting to run."""
        return next((e for e in self.entries if e.state is JobState.QUEUED), None)
