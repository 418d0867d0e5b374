"""JobRunner: the window's one worker pattern for long jobs (napari's generator workers).

A job is a callable that takes a :class:`~app.core.jobs.CancelToken` and returns an
iterator of typed events: a load, a reply, a download, a Hub lookup, an image check. The
runner runs jobs on Python threads (at most ``workers`` at once; the rest wait in order)
and delivers every event, then :class:`JobEnded`, as a queued Qt signal on the GUI thread.
Widgets never see a worker thread. Cancelling sets the job's token (the job stops at its
next check) or drops it if it has not started; :meth:`JobRunner.shutdown` cancels
everything and joins every thread.

Written here rather than taken from superqt: its ``thread_worker`` runs on QThreadPool
threads that cannot be joined one by one, and it cancels only between yields, where an
engine job must pass its token down to stop a token mid-prompt.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal, Slot

from app.core.jobs import CancelToken

logger = logging.getLogger(__name__)

Job = Callable[[CancelToken], Iterator[object]]


@dataclass(frozen=True, slots=True)
class JobEnded:
    """Posted last for every job that started, whatever happened in it."""

    job: int


@dataclass(frozen=True, slots=True)
class JobFailed:
    """The job raised: a bug (a job reports expected failures as events of its own)."""

    job: int
    error: BaseException


class JobRunner(QObject):
    """Runs jobs on worker threads; their events arrive on the GUI thread as :attr:`delivered`."""

    delivered = Signal(int, object)  # job id, one event it yielded (or JobFailed, then JobEnded)
    _posted = Signal(int, object)  # emitted on worker threads, delivered queued

    def __init__(self, parent: QObject | None = None, *, workers: int = 1, name: str = "job"):
        super().__init__(parent)
        self._workers = max(1, workers)
        self._name = name
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._queue: deque[tuple[int, Job, Callable[[object], bool] | None]] = deque()
        self._tokens: dict[int, CancelToken] = {}
        self._threads: list[threading.Thread] = []
        self._active = 0  # workers that have not decided to exit
        self._running: set[int] = set()
        self._closed = False
        self._posted.connect(self._on_posted, Qt.ConnectionType.QueuedConnection)

    @property
    def busy(self) -> bool:
        """Whether a job runs or waits."""
        with self._lock:
            return bool(self._running or self._queue)

    def start(self, job: Job, *, on_thread: Callable[[object], bool] | None = None) -> int:
        """Queue ``job``; returns its id.

        ``on_thread(event)`` sees each event on the worker thread first and returns True
        when it consumed it (e.g. reply text gathered for one throttled flush).
        """
        if self._closed:
            raise RuntimeError(f"the {self._name} runner was shut down")
        job_id = next(self._ids)
        with self._lock:
            self._tokens[job_id] = CancelToken()
            self._queue.append((job_id, job, on_thread))
            spawn = self._active < self._workers
            if spawn:
                self._active += 1
                self._threads = [t for t in self._threads if t.is_alive()]
                thread = threading.Thread(
                    target=self._work, name=f"herd-{self._name}-{job_id}", daemon=True
                )
                self._threads.append(thread)
        if spawn:
            thread.start()
        return job_id

    def cancel(self, job_id: int) -> None:
        """Cancel one job: its token is set; if it has not started, it never will."""
        with self._lock:
            self._queue = deque(item for item in self._queue if item[0] != job_id)
            token = self._tokens.get(job_id)
        if token is not None:
            token.cancel()

    def cancel_all(self) -> None:
        """Cancel every job, running or waiting."""
        with self._lock:
            self._queue.clear()
            tokens = list(self._tokens.values())
        for token in tokens:
            token.cancel()

    def join(self, timeout: float = 5.0) -> bool:
        """Wait for the worker threads to end; True when they all did."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("%s did not stop in %.1f s", thread.name, timeout)
                return False
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel everything, join every thread; nothing is delivered after this."""
        self._closed = True
        self.cancel_all()
        self.join(timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._active -= 1
                    return
                job_id, job, on_thread = self._queue.popleft()
                token = self._tokens[job_id]
                self._running.add(job_id)
            try:
                for event in job(token):
                    if on_thread is None or not on_thread(event):
                        self._post(job_id, event)
            except Exception as exc:  # noqa: BLE001 - a bug in a job must not kill the window
                logger.exception("%s job %d failed", self._name, job_id)
                self._post(job_id, JobFailed(job_id, exc))
            finally:
                with self._lock:
                    self._running.discard(job_id)
                    self._tokens.pop(job_id, None)
                self._post(job_id, JobEnded(job_id))

    def _post(self, job_id: int, event: object) -> None:
        try:
            self._posted.emit(job_id, event)
        except RuntimeError:  # the runner was deleted without a shutdown
            pass

    @Slot(int, object)
    def _on_posted(self, job_id: int, event: object) -> None:
        if not self._closed:
            self.delivered.emit(job_id, event)
