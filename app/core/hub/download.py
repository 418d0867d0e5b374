"""Resumable, verified downloads: what Herd adds to huggingface_hub, and nothing more.

``hf_hub_download`` deletes its temporary file on any failure and checks only the byte
count. A :class:`Downloader` job instead keeps ``downloads/<sha256>.part`` across pauses,
cancels and restarts, resumes it with HTTP Range, hashes while writing, and moves a file
into the Hugging Face cache only when its sha256 is the Hub's LFS hash. Metadata, auth,
endpoint and the HTTP session are huggingface_hub's (through :class:`HubClient`).

Speed (bench/download_throughput.py): the body arrives in 1 MiB reads, is written with
``os.write`` straight from the received block and is hashed on a second thread (all in
:mod:`app.core.hub.transfer`), so receiving, writing and hashing overlap on two cores.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import HerdError
from app.core.hub import cache as hub_cache
from app.core.hub.client import HubClient, RemoteFile
from app.core.hub.errors import (
    ChecksumError,
    DiskSpaceError,
    FileChangedError,
    GatedRepoError,
    HubError,
    HubOfflineError,
    RepoNotFoundError,
)
from app.core.hub.jobs import (
    DownloadControl,
    DownloadDone,
    DownloadEvent,
    DownloadProgress,
    DownloadRequest,
    DownloadStopped,
    JobState,
)
from app.core.hub.transfer import (
    DISK_FULL,
    HASH_BLOCK,
    FreeSpace,
    Hasher,
    Rate,
    free_space,
    lock_partial,
    same_disk,
    size_of,
    write_all,
)
from app.core.jobs import CancelToken
from app.core.plan.words import size as fmt_size

logger = logging.getLogger(__name__)

CHUNK: int | None = None  # None: the blocks as they arrive (no re-chunking copies)
PROGRESS_EVERY_S = 0.1
SHA256_RE = re.compile(r"[0-9a-f]{64}")


def partial_path(downloads: Path, request: DownloadRequest, f: RemoteFile) -> Path:
    """The partial file of ``f``: named by its sha256, else by repository and name."""
    if f.sha256:
        return downloads / f"{f.sha256}.part"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{request.repo_id}--{f.name}")
    return downloads / f"{safe}.part"


def partial_bytes(downloads: Path, request: DownloadRequest) -> int:
    """Bytes already downloaded for ``request`` (partial files)."""
    total = 0
    for f in request.files:
        p = partial_path(downloads, request, f)
        total += p.stat().st_size if p.exists() else 0
    return total


def discard_partials(downloads: Path, request: DownloadRequest) -> None:
    """Delete ``request``'s partial files (a confirmed cancel)."""
    for f in request.files:
        partial_path(downloads, request, f).unlink(missing_ok=True)


@dataclass(slots=True)
class _Tally:
    request: DownloadRequest
    total: int
    done: int = 0
    last_emit: float = 0.0


class Downloader:
    """Runs download jobs into ``hub_cache``, keeping partial files in ``downloads``.

    ``also_in``: caches only read (Herd's old folder); a request complete in one is done.
    """

    def __init__(
        self,
        client: HubClient,
        downloads: Path,
        hub_cache_dir: Path,
        *,
        free_space_fn: FreeSpace = free_space,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        chunk: int | None = CHUNK,
        progress_every_s: float = PROGRESS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        also_in: tuple[Path, ...] = (),
    ) -> None:
        self.client = client
        self.downloads = downloads
        self.cache = hub_cache_dir
        self.also_in = also_in
        self._free_space = free_space_fn
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.chunk = chunk
        self.progress_every_s = progress_every_s
        self._clock = clock
        # No process-wide change of httpcore2's read size (64 KiB): it cost 25% only on
        # loopback (704 vs 943 MB/s for 1 GB, bench/download_throughput.py), far above any
        # real link.

    # --- the job ------------------------------------------------------------------------

    def run(self, request: DownloadRequest, control: CancelToken) -> Iterator[DownloadEvent]:
        """Download every file of ``request``; yields progress, then Done or Stopped.

        ``control`` stops the job at the next chunk; with a :class:`DownloadControl` whose
        ``discard`` is set (a confirmed cancel) the partial files are deleted, otherwise
        they stay and the next run resumes them.
        """
        try:
            yield from self._run(request, control)
        except HerdError as exc:
            logger.info("download of %s failed: %s", request.key, exc.user_message)
            yield DownloadStopped(
                request.key,
                JobState.FAILED,
                exc.user_message,
                exc.hint,
                needs_token=isinstance(exc, GatedRepoError),
                error=type(exc).__name__,
            )
        except OSError as exc:  # the disk (HerdErrors that are also OSErrors went above)
            logger.warning("download of %s: cannot write: %s", request.key, exc)
            full = exc.errno in DISK_FULL
            yield DownloadStopped(
                request.key,
                JobState.FAILED,
                *(self._full(request) if full else self._unwritable(exc)),
                error="DiskSpaceError" if full else "OSError",
            )

    def _full(self, request: DownloadRequest) -> tuple[str, str]:
        """Message and hint for a disk that filled up mid-download: how much more it takes."""
        try:
            todo = [f for f in request.files if self._cached(request, f) is None]
            left = self.missing_bytes(request, todo)
        except OSError:
            left = 0
        if not left:  # every byte is here: moving it into the model folder failed
            return (
                f"The disk filled up during the download of {request.title}.",
                "Free some space, then resume: the part downloaded so far is kept.",
            )
        return (
            f"The disk filled up during the download of {request.title}: it needs "
            f"{fmt_size(left)} more on {self.downloads}.",
            f"Free {fmt_size(left)} or more, then resume: the part downloaded so far is kept.",
        )

    def _unwritable(self, exc: OSError) -> tuple[str, str]:
        return (
            f"Cannot write the download in {self.downloads}: {exc.strerror or exc}.",
            "Check the folder's permissions and the disk.",
        )

    def _run(self, request: DownloadRequest, control: CancelToken) -> Iterator[DownloadEvent]:
        self.downloads.mkdir(parents=True, exist_ok=True)
        source = self._source(request)
        todo = [f for f in request.files if self._cached(request, f, source) is None]
        self.check_space(request, todo)
        tally = _Tally(request, sum(f.size for f in request.files))
        tally.done = sum(f.size for f in request.files if f not in todo)
        rate = Rate(self._clock)
        paths: dict[str, Path] = {}
        for f in request.files:
            if f in todo:
                fetched = yield from self._fetch(request, f, control, tally, rate)
                if fetched is None:  # paused or cancelled: an event, not an error
                    yield self._stopped(request, control)
                    return
                paths[f.name] = fetched
            else:
                cached = self._cached(request, f, source)
                assert cached is not None  # it is not in ``todo``
                paths[f.name] = cached
        model = paths[request.model_file]
        projector = paths.get(request.projector_file) if request.projector_file else None
        yield DownloadDone(request.key, model, projector)

    def _stopped(self, request: DownloadRequest, control: CancelToken) -> DownloadStopped:
        """The event of a paused job (its partial files kept) or a cancelled one (deleted)."""
        discard = isinstance(control, DownloadControl) and control.discard
        if discard:
            discard_partials(self.downloads, request)
        state = JobState.CANCELLED if discard else JobState.PAUSED
        return DownloadStopped(request.key, state, f"{request.title} {state.value}.")

    def check_space(self, request: DownloadRequest, todo: list[RemoteFile]) -> None:
        """Refuse before the first byte when the rest of ``todo`` does not fit on the disk.

        Raises:
            DiskSpaceError: naming the shortfall.
        """
        self._require(request, self.missing_bytes(request, todo), self.downloads)
        if not same_disk(self.downloads, self.cache):  # each finished file moves there
            self._require(request, sum(f.size for f in todo), self.cache)

    def _require(self, request: DownloadRequest, needed: int, folder: Path) -> None:
        free = self._free_space(folder)
        if needed > free:
            short = needed - free
            raise DiskSpaceError(
                f"Not enough disk space for {request.title}: it needs {fmt_size(needed)} more, "
                f"{fmt_size(free)} is free on {folder}.",
                f"Free {fmt_size(short)} or more, or choose a smaller quant.",
                shortfall=short,
            )

    def missing_bytes(self, request: DownloadRequest, todo: list[RemoteFile]) -> int:
        """Bytes of ``todo`` (files not in the cache) that are not in a partial file yet."""
        return sum(max(f.size - size_of(partial_path(self.downloads, request, f)), 0) for f in todo)

    def _cached(
        self, request: DownloadRequest, f: RemoteFile, cache: Path | None = None
    ) -> Path | None:
        revisions = (request.revision, request.commit) if request.commit else (request.revision,)
        return hub_cache.find_complete(cache or self.cache, request.repo_id, f, revisions)

    def _source(self, request: DownloadRequest) -> Path:
        """The cache to take ``request`` from: one of ``also_in`` if all of it is there."""
        if all(self._cached(request, f) for f in request.files):
            return self.cache
        for cache in self.also_in:  # all or none, so the parts of a split model stay together
            if all(self._cached(request, f, cache) for f in request.files):
                logger.info("%s is complete in %s: not downloaded again", request.key, cache)
                return cache
        return self.cache

    def _fetch(
        self,
        request: DownloadRequest,
        f: RemoteFile,
        control: CancelToken,
        tally: _Tally,
        rate: Rate,
    ) -> Generator[DownloadEvent, None, Path | None]:
        """Fetch one file; returns where it is, or None when ``control`` stopped it."""
        # by commit, so every part of a split model comes from the same one
        revision = request.commit or request.revision
        where = self.client.locate(request.repo_id, f.name, revision)
        etag_sha = where.etag if where.etag and SHA256_RE.fullmatch(where.etag) else None
        if f.sha256 and etag_sha and etag_sha != f.sha256:
            raise FileChangedError(
                f"{f.name} changed on the Hub since the repository was listed.",
                "Open the repository again and download the new version.",
            )
        sha = f.sha256 or etag_sha
        size = where.size if where.size is not None else f.size
        part = partial_path(self.downloads, request, f)
        base = tally.done
        failures, renewed_at = 0, -1
        with part.open("ab") as out, Hasher() as hasher:
            lock_partial(out, part)
            fd = out.fileno()  # O_APPEND: every write lands at the end, also after a truncate
            offset = out.seek(0, os.SEEK_END)
            if offset > size:
                out.truncate(0)
                offset = out.seek(0)
            if offset:  # hash what is already here (hashlib's state cannot be saved)
                with part.open("rb") as fh:
                    while block := fh.read(HASH_BLOCK):
                        hasher.update(block)
                        if control.cancelled:
                            return None
                tally.done = base + offset
                yield self._forced(tally, f.name, offset, size, "checking")
            while offset < size:
                if control.cancelled:
                    return None
                start = offset
                try:
                    if failures:  # a signed CDN address expires: ask the Hub for a fresh one
                        where = self.client.locate(request.repo_id, f.name, revision)
                    with self.client.open_range(where, offset) as response:
                        if response.status_code == 200 and offset:  # Range ignored: start over
                            out.truncate(0)
                            out.seek(0)
                            hasher.reset()
                            offset = 0
                        for block in response.iter_bytes(self.chunk):
                            write_all(fd, block)
                            hasher.update(block)
                            offset += len(block)
                            tally.done = base + offset
                            event = self._progress(tally, f.name, offset, size, rate, "")
                            if event is not None:
                                yield event
                            if control.cancelled:
                                return None
                except (GatedRepoError, RepoNotFoundError, FileChangedError):
                    raise
                except HubOfflineError:
                    failures = 1 if offset > start else failures + 1
                    if failures > self.max_retries:
                        raise
                    wait = min(self.backoff_s * 2 ** max(failures - 1, 0), 30.0)
                    logger.info("cut at %d of %s; retry in %.1f s", offset, f.name, wait)
                    if control.wait(wait):
                        return None
                    continue
                except HubError:
                    # a signed CDN address expires (403): ask the Hub for a new one, once
                    if where.location == where.url or renewed_at == offset:
                        raise
                    renewed_at = offset
                    logger.info("renewing the download address of %s", f.name)
                    where = self.client.locate(request.repo_id, f.name, revision)
                    continue
                if offset < size and offset == start:
                    failures += 1
                    if failures > self.max_retries:
                        raise HubOfflineError(
                            f"The Hub keeps ending the transfer of {f.name} early.",
                            "Try again later; the part downloaded so far is kept.",
                        )
            yield self._forced(tally, f.name, offset, size, "verifying")
            digest = hasher.hexdigest()
        if offset != size or (sha is not None and digest != sha):
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{f.name} is damaged: its sha256 does not match the Hub's, so it was deleted "
                "and will not be offered for loading.",
                "Download it again; if it fails again, the network or a proxy alters the data.",
            )
        commit = where.commit or request.commit or request.revision
        blob = sha or where.etag or f.name.replace("/", "_")
        return hub_cache.store(
            self.cache, request.repo_id, request.revision, commit, f.name, blob, part
        )

    def _forced(
        self, tally: _Tally, name: str, done: int, total: int, phase: str
    ) -> DownloadProgress:
        """A progress event that is always sent (a phase starts: checking, verifying)."""
        progress = self._progress(tally, name, done, total, None, phase, force=True)
        assert progress is not None  # forced
        return progress

    def _progress(
        self,
        tally: _Tally,
        name: str,
        file_done: int,
        file_total: int,
        rate: Rate | None,
        phase: str,
        force: bool = False,
    ) -> DownloadProgress | None:
        now = self._clock()
        if not force and now - tally.last_emit < self.progress_every_s and file_done < file_total:
            return None
        tally.last_emit = now
        speed = rate.add(tally.done) if rate is not None else 0.0
        phase = phase or "downloading"
        left = tally.total - tally.done
        return DownloadProgress(
            key=tally.request.key,
            filename=name,
            file_done=file_done,
            file_total=file_total,
            done=tally.done,
            total=tally.total,
            speed_bps=speed,
            eta_s=left / speed if speed > 0 else None,
            phase=phase,
        )
