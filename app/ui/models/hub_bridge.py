"""HubBridge: catalog look-ups and the download queue on threads, reported as Qt signals.

Widgets never see a worker thread. Look-ups (a repository's quants, a search, the
hardware probe) run on short-lived ``threading.Thread``s, the planner's header fetches on
two of their own; downloads run one at a time on one queue thread that takes the next
queued entry until none is left. Every result is posted through one queued signal to the
GUI thread and re-emitted there as the public signals below. ``shutdown()`` pauses the
running download (its partial file stays, so the next start resumes it) and joins every
thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.core.errors import HerdError
from app.core.hardware.probe import Hardware, probe_hardware
from app.core.hub import catalog, library
from app.core.hub.catalog import RepoQuants
from app.core.hub.download import discard_partials
from app.core.hub.jobs import (
    DownloadControl,
    DownloadDone,
    DownloadProgress,
    DownloadQueue,
    DownloadRequest,
    DownloadStopped,
    JobState,
)
from app.core.hub.service import HubService, verdicts
from app.core.hub.verdict import Verdict
from app.core.jobs import CancelToken
from app.ui.worker import JobEnded, JobRunner

logger = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class QuantsResult:
    """A repository's quants with a verdict for each and the recommended index."""

    quants: RepoQuants
    verdicts: list[Verdict]
    best: int | None
    hardware: Hardware | None = None  # what they were judged for


@dataclass(frozen=True, slots=True)
class _Result:
    kind: str
    payload: Any


class HubBridge(QObject):
    """The Model Manager's access to :mod:`app.core.hub`, thread-safe through signals."""

    quants_ready = Signal(str, object)  # repo id, QuantsResult
    quant_planned = Signal(str, str, object, str)  # repo id, quant, Verdict, the plan's reasons
    plan_failed = Signal(str, str, str)  # repo id, quant, why the planner could not judge it
    search_ready = Signal(str, object)  # query, list[RepoSummary]
    lookup_failed = Signal(str, str, str)  # what, message, hint
    download_progress = Signal(object)  # DownloadProgress
    download_finished = Signal(str, str)  # key, path of the model file
    download_stopped = Signal(str, str, str, str, bool)  # key, state, message, hint, token?
    queue_changed = Signal()
    library_changed = Signal()

    def __init__(
        self,
        service: HubService,
        parent: QObject | None = None,
        hardware: Hardware | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.queue: DownloadQueue = service.queue()
        self._hardware = hardware
        self._lock = threading.Lock()
        # the window's one worker pattern: look-ups side by side, downloads one at a time
        self._lookups = JobRunner(self, workers=4, name="hub")
        # header fetches (megabytes each) on their own threads: a look-up never waits for them
        self._planner = JobRunner(self, workers=2, name="hub-plan")
        self._downloads = JobRunner(self, workers=1, name="hub-download")
        self._lookups.delivered.connect(self._on_lookups_event)
        self._planner.delivered.connect(self._on_lookups_event)
        self._downloads.delivered.connect(self._on_downloads_event)
        self._control: DownloadControl | None = None
        self._running_key = ""
        self._closing = False
        self._plans: list[int] = []  # job ids of the quants being planned

    # --- look-ups -----------------------------------------------------------------------

    def fetch_quants(self, repo_id: str) -> None:
        """Look up ``repo_id``'s quants and verdicts; answers with quants_ready or failed."""

        def work() -> _Result:
            quants = self.service.quants(repo_id)
            hardware = self._probe()
            judged, best = verdicts(quants, hardware)
            return _Result("quants", (repo_id, QuantsResult(quants, judged, best, hardware)))

        self._spawn(f"quants {repo_id}", work)

    def plan_quant(self, quants: RepoQuants, row: int) -> None:
        """Ask the planner about one quant (fetches its GGUF headers once).

        Answers with quant_planned, or plan_failed when the headers cannot be read.
        """
        option = quants.quants[row]

        def work() -> _Result:
            try:
                verdict, plan = self.service.plan(quants, option, self._probe())
            except HerdError as exc:
                return _Result("unplanned", (quants.repo_id, option.quant, exc.user_message))
            reasons = "\n".join(plan.reasons)
            return _Result("planned", (quants.repo_id, option.quant, verdict, reasons))

        what = f"plan {quants.repo_id} {option.quant}"
        self._plans.append(self._spawn(what, work, self._planner))

    def plan_quants(self, quants: RepoQuants, rows: list[int]) -> None:
        """Plan every quant in ``rows``, in that order, in the background.

        Plans still waiting for an earlier repository are dropped first: only the
        repository on screen is worth the header downloads.
        """
        self.cancel_plans()
        for row in rows:
            self.plan_quant(quants, row)

    def cancel_plans(self) -> None:
        """Drop the plans not yet started (one already fetching headers finishes)."""
        for job in self._plans:
            self._planner.cancel(job)
        self._plans.clear()

    def search(self, query: str) -> None:
        """Search the Hub for GGUF repositories; answers with search_ready or failed."""

        def work() -> _Result:
            return _Result("search", (query, catalog.search(self.service.client(), query)))

        self._spawn(f"search {query!r}", work)

    def _probe(self) -> Hardware:
        with self._lock:
            if self._hardware is None:
                self._hardware = probe_hardware()
            return self._hardware

    def _spawn(
        self, what: str, work: Callable[[], _Result], runner: JobRunner | None = None
    ) -> int:
        def job(_cancel: CancelToken) -> Iterator[_Result]:
            try:
                yield work()
            except HerdError as exc:
                yield _Result("failed", (what, exc.user_message, exc.hint))
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the window
                logger.exception("%s failed", what)
                yield _Result("failed", (what, f"Unexpected error: {exc}", ""))

        return (runner or self._lookups).start(job)

    # --- downloads ----------------------------------------------------------------------

    def _keep(self, change: Callable[..., object], *args: object, **kwargs: object) -> None:
        """Change the download queue, saying (never raising) a save that failed.

        A queue file that cannot be saved (a full disk) must not break the window; the
        queue in memory is still right and is saved at the next change.
        """
        try:
            change(*args, **kwargs)
        except HerdError as exc:
            logger.warning("download queue not saved: %s", exc.user_message)
            self.lookup_failed.emit("queue", exc.user_message, exc.hint)

    def enqueue(self, request: DownloadRequest) -> None:
        """Add a download to the queue and start the queue if it is idle."""
        self._keep(self.queue.add, request)
        self.queue_changed.emit()
        self._start_runner()

    def pause(self, key: str) -> None:
        """Pause ``key``: stop after the current chunk, keep the partial file."""
        if key == self._running_key and self._control is not None:
            self._control.pause()
        else:
            self._keep(self.queue.update, key, JobState.PAUSED)
            self.queue_changed.emit()

    def resume(self, key: str) -> None:
        """Queue a paused or failed download again; it resumes from its partial file."""
        entry = self.queue.get(key)
        if entry is None or entry.state is JobState.RUNNING:
            return
        self._keep(self.queue.update, key, JobState.QUEUED)
        self.queue_changed.emit()
        self._start_runner()

    def cancel(self, key: str) -> None:
        """Cancel ``key`` and delete its partial data (ask the user before calling this)."""
        if key == self._running_key and self._control is not None:
            self._control.cancel()
            return
        entry = self.queue.get(key)
        if entry is not None:
            discard_partials(self.service.paths.downloads, entry.request)
            self._keep(self.queue.remove, key)
            self.queue_changed.emit()

    def forget(self, key: str) -> None:
        """Drop a finished or failed entry from the list."""
        if key != self._running_key:
            self._keep(self.queue.remove, key)
            self.queue_changed.emit()

    def start(self) -> None:
        """Resume what was queued when the app last closed."""
        self._start_runner()

    @property
    def running_key(self) -> str:
        """The key of the download in progress ('' when idle)."""
        return self._running_key

    def _start_runner(self) -> None:
        if self._closing or self._running_key:
            return
        entry = self.queue.next_queued()
        if entry is None:
            return
        request = entry.request
        self._running_key = request.key
        control = self._control = DownloadControl()
        self._keep(self.queue.update, request.key, JobState.RUNNING)
        self.queue_changed.emit()

        def job(_cancel: CancelToken) -> Iterator[object]:
            try:
                yield from self.service.downloader().run(request, control)
            except Exception as exc:  # noqa: BLE001 - report, never kill the window
                logger.exception("download %s crashed", request.key)
                yield DownloadStopped(request.key, JobState.FAILED, f"Unexpected error: {exc}")

        self._downloads.start(job)

    @Slot(int, object)
    def _on_lookups_event(self, _job: int, item: object) -> None:
        if isinstance(item, _Result) and not self._closing:
            self._on_result(item)

    @Slot(int, object)
    def _on_downloads_event(self, _job: int, item: object) -> None:
        if self._closing:  # shutdown() already settled the queue
            return
        if isinstance(item, JobEnded):
            self._control, self._running_key = None, ""
            self._start_runner()
            return
        self._on_worker_posted(item)

    def _on_worker_posted(self, item: object) -> None:
        if isinstance(item, DownloadProgress):
            self.download_progress.emit(item)
        elif isinstance(item, DownloadDone):
            self._keep(self.queue.update, item.key, JobState.DONE, path=str(item.path))
            self.queue_changed.emit()
            self.download_finished.emit(item.key, str(item.path))
            self.library_changed.emit()
        elif isinstance(item, DownloadStopped):
            if item.state is JobState.CANCELLED:
                self._keep(self.queue.remove, item.key)
            else:
                self._keep(self.queue.update, item.key, item.state, item.message)
            self.queue_changed.emit()
            self.download_stopped.emit(
                item.key, item.state.value, item.message, item.hint, item.needs_token
            )

    def _on_result(self, result: _Result) -> None:
        if result.kind == "quants":
            self.quants_ready.emit(*result.payload)
        elif result.kind == "planned":
            self.quant_planned.emit(*result.payload)
        elif result.kind == "unplanned":
            self.plan_failed.emit(*result.payload)
        elif result.kind == "search":
            self.search_ready.emit(*result.payload)
        elif result.kind == "failed":
            self.lookup_failed.emit(*result.payload)

    # --- library ------------------------------------------------------------------------

    def models(self) -> list[library.LocalModel]:
        """The local models (fast: a folder walk)."""
        return library.list_models(self.service.paths)

    def shutdown(self) -> None:
        """Pause the running download and join every thread (the partial file stays)."""
        self._closing = True
        if self._control is not None:
            self._control.pause()
        self._lookups.shutdown(JOIN_TIMEOUT_S)
        self._planner.shutdown(JOIN_TIMEOUT_S)
        self._downloads.shutdown(JOIN_TIMEOUT_S)
        if self._running_key:
            # it will resume at the next start: RUNNING turns back into QUEUED on load
            self._keep(self.queue.update, self._running_key, JobState.QUEUED)
        self._control, self._running_key = None, ""
