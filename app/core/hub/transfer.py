"""The byte-moving parts of a download: hashing on a thread, whole writes, free space.

Kept apart from :mod:`app.core.hub.download` (the job: resume, verify, move into the cache)
because they are about speed and the operating system, not about the Hub.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from app.core.hub.errors import DiskSpaceError, HubError

HASH_BLOCK = 1 << 20  # reading back a resumed part, through the hasher's queue
HASH_QUEUE = 32  # blocks received but not yet hashed (about 32 MiB at most)

FreeSpace = Callable[[Path], int]
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # a quota reads as a full disk to people


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_space(folder: Path) -> int:
    """Free bytes on the file system holding ``folder`` (or its nearest existing parent)."""
    return shutil.disk_usage(_existing(folder)).free


def same_disk(a: Path, b: Path) -> bool:
    """Whether two folders (or their nearest existing parents) are on one file system."""
    try:
        return os.stat(_existing(a)).st_dev == os.stat(_existing(b)).st_dev
    except OSError:
        return True  # cannot tell: the move itself will say if the disk is full


class Rate:
    """Speed over the last few seconds, for the speed and ETA shown."""

    def __init__(self, clock: Callable[[], float], window_s: float = 3.0) -> None:
        self._clock = clock
        self._window = window_s
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, done: int) -> float:
        """Note ``done`` bytes so far; returns bytes per second over the window."""
        now = self._clock()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        return (done - d0) / (now - t0) if now > t0 else 0.0


_RESET = b""  # on the hasher's queue (where blocks are never empty): start a new sha256


class Hasher:
    """sha256 on its own thread, fed in order; hashlib releases the GIL on big blocks."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=HASH_QUEUE)
        self._thread = threading.Thread(target=self._work, name="herd-sha256", daemon=True)
        self._thread.start()

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, block: bytes) -> None:
        """Hash ``block`` after the blocks before it (waits while the queue is full)."""
        if block:
            self._queue.put(block)

    def reset(self) -> None:
        """Start over (the server ignored Range and sends the file from byte 0)."""
        self._queue.put(_RESET)

    def hexdigest(self) -> str:
        """The digest of every block given; ends the thread."""
        self.close()
        return self._hash.hexdigest()

    def close(self) -> None:
        """Hash what is queued, then join the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _work(self) -> None:
        while (block := self._queue.get()) is not None:
            if not block:  # _RESET
                self._hash = hashlib.sha256()
            else:
                self._hash.update(block)


def write_all(fd: int, block: bytes) -> None:
    """Write all of ``block`` to ``fd`` (no buffer in between: the block is written once)."""
    done = os.write(fd, block)
    if done < len(block):
        view = memoryview(block)
        while done < len(block):
            done += os.write(fd, view[done:])


def lock_partial(handle: BinaryIO, part: Path) -> None:
    """Hold a partial file for this job alone (another window or ``herd pull`` may run).

    Raises:
        HubError: another process is downloading the same file.
    """
    try:
        import fcntl
    except ImportError:  # Windows: the sha256 check still catches interleaved writes
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        raise HubError(
            f"{part.name} is being downloaded by another Herd (a window or `herd pull`).",
            "Wait for it to finish; this download resumes from its data afterwards.",
        ) from exc


def size_of(path: Path) -> int:
    """The size of ``path`` in bytes (0 when it does not exist)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once: a temporary file beside it, fsync, rename.

    Whatever fails (a full disk, a killed process), ``path`` keeps its old content and the
    temporary file is removed. The temporary name is unique, so two processes saving the
    same file (the window and ``herd pull``) never write into each other's.

    Raises:
        OSError: the folder cannot be written; ``path`` is unchanged.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())  # a full disk may only say so here (NFS, delayed allocation)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_error(exc: OSError, folder: Path, what: str) -> HubError:
    """``exc``, raised writing ``what`` in ``folder``, in words: a full disk or another failure."""
    if exc.errno in DISK_FULL:
        return DiskSpaceError(
            f"The disk is full: Herd cannot save {what} in {folder}.",
            "Free some space on that disk, then try again.",
        )
    return HubError(
        f"Herd cannot save {what} in {folder}: {exc.strerror or exc}.",
        "Check the folder's permissions and the disk.",
    )
