"""EngineBridge: runs engine jobs on Python threads and reports back as Qt signals.

Widgets never see a worker thread. Each job (load, chat, unload) runs on the window's one
worker pattern (:class:`~app.ui.worker.JobRunner`), whose typed events arrive on the GUI
thread and are turned into the public signals below. Reply text comes already batched by
the engine (at most ~30 batches a second: the token path's one throttle) and does not pass
through the job's thread: the thread that reads the engine's pipe emits each batch as a
queued signal, and it goes straight to the view as one ``token_batch``. (Posted events are
delivered in order, so a reply's text always arrives before its Finished.)

Jobs run one at a time. Starting a job while another runs cancels the old one and joins
its thread first (a cancelled job ends within ~100 ms), so events always arrive in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.core import events as ev
from app.core.chat.budget import Fitted, OverflowPolicy, fit_conversation, reply_reserve
from app.core.chat.messages import ChatMessage
from app.core.engine.client import EngineClient
from app.core.errors import HerdError
from app.core.jobs import CancelToken
from app.core.load import LoadRequest, Planned, load_model
from app.core.paths import AppPaths
from app.core.settings import SamplingSettings
from app.server.turn import EngineTurn, in_turn
from app.ui.worker import JobEnded, JobFailed, JobRunner

logger = logging.getLogger(__name__)

WATCH_INTERVAL_MS = 1000  # how soon a crash while idle is noticed
JOIN_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class DraftCounted:
    """A draft count: the conversation with the draft, and the draft alone."""

    n_tokens: int
    n_draft: int


@dataclass(frozen=True, slots=True)
class PromptFitted:
    """A chat job fitted the conversation into the context (before generating)."""

    fitted: Fitted


# Every event an engine job of the window yields: the engine's own, the load job's plan,
# and the bridge's two steps of its own.
BridgeEvent = ev.EngineEvent | Planned | PromptFitted | DraftCounted


class EngineBridge(QObject):
    """Owns the EngineClient; the one way the UI talks to the engine."""

    load_progress = Signal(float, str)
    loaded = Signal(object)  # ModelFacts
    load_failed = Signal(str, str)  # message, hint
    failed = Signal(object)  # Failed: a load that failed (with its log), for the error banner
    load_cancelled = Signal()
    unloaded = Signal()
    token_batch = Signal(str)
    reply_finished = Signal(object)  # Finished
    reply_failed = Signal(str, str)  # message, hint
    engine_crashed = Signal(object)  # EngineCrashed
    busy_changed = Signal(bool)
    prompt_fitted = Signal(object)  # Fitted: what is sent, what was dropped, prompt tokens
    tokens_streamed = Signal(int)  # tokens generated so far in the running reply
    draft_counted = Signal(int, int)  # tokens of the conversation plus the draft; the draft
    notice = Signal(str)  # something to say that is not a failure (the job goes on)
    planned = Signal(object)  # Planned: the plan a load is about to use
    _pushed = Signal(int, object)  # (job id, Token) from the engine's reader thread

    def __init__(
        self,
        paths: AppPaths,
        parent: QObject | None = None,
        *,
        client: EngineClient | None = None,
    ) -> None:
        super().__init__(parent)
        self._client = client if client is not None else EngineClient(paths)
        self.turn = EngineTurn()  # one reply at a time: the window's or its local server's
        # the window's one worker pattern: engine jobs one at a time, draft counts beside
        self._jobs = JobRunner(self, workers=1, name="engine")
        self._jobs.delivered.connect(self._on_jobs_event)
        # a reply's text skips the job's thread: the engine's reader emits it (queued)
        self._pushed.connect(self._on_jobs_event)
        self._counts = JobRunner(self, workers=1, name="count")
        self._counts.delivered.connect(self._on_counts_event)
        self._current = 0  # the id of the newest engine job
        self._job_kind = ""  # kind of the current job; "" when idle
        self._kinds: dict[int, str] = {}  # job id -> kind, until the job has ended
        self._streamed = 0  # tokens of the running reply
        self._count_again: tuple[list[ChatMessage], ChatMessage | None] | None = None
        self._closed = False
        self._reported_crash: ev.EngineCrashed | None = None
        # a job reports a crash by itself; this notices one while no job runs
        self._watch_timer = QTimer(self)
        self._watch_timer.setInterval(WATCH_INTERVAL_MS)
        self._watch_timer.timeout.connect(self._on_watch_timer_timeout)
        self._watch_timer.start()

    # -- state -----------------------------------------------------------------------
    @property
    def client(self) -> EngineClient:
        """The engine client (tests use it to kill the engine)."""
        return self._client

    @property
    def facts(self) -> ev.ModelFacts | None:
        """The loaded model, or None."""
        return self._client.facts

    @property
    def busy(self) -> bool:
        """Whether a job is running."""
        return bool(self._job_kind)

    @property
    def generating(self) -> bool:
        """Whether a reply is being generated."""
        return self._job_kind == "chat"

    @property
    def continue_problem(self) -> str:
        """Why the loaded model's format cannot continue a reply ("" when it can)."""
        return self._client.continue_problem

    @property
    def loading(self) -> bool:
        """Whether a model is being loaded."""
        return self._job_kind == "load"

    # -- requests --------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine process now, so the first load does not wait for it."""
        if not self._client.alive:
            self._client.start()

    def load(self, request: LoadRequest) -> None:
        """Run the load job for ``request`` (header, devices, plan, engine) off the GUI thread.

        (Re)starts the engine first when it is not running, which also recovers from a crash.
        """
        client = self._client

        def job(cancel: CancelToken) -> Iterator[BridgeEvent]:
            yield from load_model(client, request, cancel)

        self._start_job("load", job)

    def send(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingSettings,
        policy: OverflowPolicy = OverflowPolicy.STOP,
        pinned: frozenset[int] = frozenset(),
        *,
        continue_last: bool = False,
    ) -> None:
        """Generate the assistant's reply to ``messages``, fitted into the context by ``policy``.

        ``pinned`` are indices of messages never left out (the system prompt, pins).
        ``continue_last``: go on with the last message, a reply (only the new text comes).
        """
        history = list(messages)
        client = self._client

        def job(cancel: CancelToken) -> Iterator[BridgeEvent]:
            facts = client.facts
            if facts is None:
                yield ev.Failed("No model is loaded.", "Load a model first.")
                return
            try:
                fitted = fit_conversation(
                    history,
                    count=lambda msgs: client.count_tokens(messages=msgs),
                    n_ctx=facts.n_ctx,
                    reserve=reply_reserve(sampling.max_tokens, facts.n_ctx),
                    policy=policy,
                    pinned=pinned,
                )
            except HerdError as exc:
                yield ev.Failed(exc.user_message, exc.hint)
                return
            yield PromptFitted(fitted)
            yield from client.chat(
                list(fitted.messages),
                sampling,
                cancel,
                on_token=on_token,
                continue_final=continue_last,
            )

        pushed = self._pushed
        started: list[int] = []  # the job's id, known once it is started

        def on_token(event: ev.Token) -> None:  # on the engine's reader thread
            pushed.emit(started[0] if started else 0, event)

        started.append(self._start_job("chat", in_turn(self.turn, job)))

    def count_draft(
        self, messages: Sequence[ChatMessage], draft: ChatMessage | None = None
    ) -> None:
        """Count ``messages`` plus the ``draft`` message, and the draft alone, in the background.

        The draft's own count is its text and images as the model reads them (the message
        frame around them left out). Skipped while the engine is busy; a request made while
        a count runs replaces any other waiting one.
        """
        if self._closed or self.busy or self._client.facts is None:
            return
        if self._counts.busy:
            self._count_again = (list(messages), draft)
            return
        history = list(messages) + ([draft] if draft is not None else [])
        client = self._client

        def job(_cancel: CancelToken) -> Iterator[DraftCounted]:
            try:
                n = client.count_tokens(messages=history) if history else 0
                n_draft = 0
                if draft is not None:
                    frame = client.count_tokens(messages=[ChatMessage(draft.role, "")])
                    n_draft = client.count_tokens(messages=[draft]) - frame
            except (HerdError, OSError):
                return
            yield DraftCounted(n, n_draft)

        self._counts.start(job)

    def unload(self) -> None:
        """Release the model; the engine process stays up."""
        client = self._client

        def job(cancel: CancelToken) -> Iterator[BridgeEvent]:
            client.unload()
            yield ev.Unloaded()

        self._start_job("unload", job)

    @Slot()
    def stop(self) -> None:
        """Stop the reply being generated (it ends with a Finished, stop reason USER)."""
        if self._job_kind == "chat":
            self._jobs.cancel(self._current)

    @Slot()
    def cancel_load(self) -> None:
        """Cancel a running load."""
        if self._job_kind == "load":
            self._jobs.cancel(self._current)

    def shutdown(self) -> None:
        """Cancel the running job, join its thread and shut the engine down (joined)."""
        if self._closed:
            return
        self._closed = True
        self._jobs.shutdown(JOIN_TIMEOUT_S)
        self._counts.shutdown(JOIN_TIMEOUT_S)
        self._watch_timer.stop()
        self._client.shutdown()
        self._set_job_kind("")

    # -- job machinery ---------------------------------------------------------------
    def _start_job(self, kind: str, make: Callable[[CancelToken], Iterator[BridgeEvent]]) -> int:
        if self._closed:
            logger.warning("ignoring a %s request after shutdown", kind)
            return 0
        # the running job is cancelled and joined first (it ends within ~100 ms), so its
        # last events are delivered before the new job's first
        self._jobs.cancel_all()
        self._jobs.join(JOIN_TIMEOUT_S)
        self._streamed = 0
        job_id = self._jobs.start(make)
        self._current = job_id
        self._kinds[job_id] = kind
        self._set_job_kind(kind)
        return job_id

    @Slot(int, object)
    def _on_counts_event(self, _job: int, event: object) -> None:
        if self._closed or not isinstance(event, DraftCounted):
            return
        self.draft_counted.emit(event.n_tokens, event.n_draft)
        again, self._count_again = self._count_again, None
        if again is not None:
            QTimer.singleShot(0, lambda: self.count_draft(*again))

    @Slot(int, object)
    def _on_jobs_event(self, job_id: int, event: object) -> None:
        if self._closed:
            return
        if isinstance(event, JobFailed):
            event = ev.Failed(f"Unexpected error: {event.error}", "")
        if isinstance(event, PromptFitted):
            self.prompt_fitted.emit(event.fitted)
            return
        if isinstance(event, ev.Progress):
            self.load_progress.emit(event.fraction, event.message)
            return
        if isinstance(event, ev.Notice):
            self.notice.emit(event.message)
            return
        if isinstance(event, Planned):
            self.planned.emit(event)
            return
        if isinstance(event, ev.Token):
            # pushed from the engine's pipe reader, already batched by the engine (its one
            # throttle): straight to the view (also a replaced reply's last words, which
            # arrive before its Finished)
            if job_id in (self._current, 0):
                self._streamed += event.n_tokens
            self.token_batch.emit(event.text)
            self.tokens_streamed.emit(self._streamed)
            return
        kind = self._kinds.get(job_id, "")
        current = job_id == self._current
        if current:
            # idle before the signal goes out, so its slots may start the next job
            self._set_job_kind("")
        if isinstance(event, JobEnded):
            self._kinds.pop(job_id, None)
        elif isinstance(event, ev.Loaded):
            self.loaded.emit(event.facts)
        elif isinstance(event, ev.Finished):
            self.reply_finished.emit(event)
        elif isinstance(event, ev.EngineCrashed):
            self._reported_crash = event  # the watcher need not report it again
            self.engine_crashed.emit(event)
        elif isinstance(event, ev.Unloaded):
            self.unloaded.emit()
        elif isinstance(event, ev.Failed):
            if kind == "load" and event.cancelled:
                self.load_cancelled.emit()
            elif kind == "load":
                self.load_failed.emit(event.message, event.hint)
                self.failed.emit(event)
            else:
                self.reply_failed.emit(event.message, event.hint)

    @Slot()
    def _on_watch_timer_timeout(self) -> None:
        crash = self._client.crash
        if crash is None or crash is self._reported_crash or self.busy or self._client.alive:
            return
        self._reported_crash = crash
        self.engine_crashed.emit(crash)

    def _set_job_kind(self, kind: str) -> None:
        was_busy = self.busy
        self._job_kind = kind
        if was_busy != self.busy:
            self.busy_changed.emit(self.busy)
