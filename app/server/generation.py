"""One reply from the engine, stepped from worker threads so the event loop never blocks."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.to_thread

from app.core import events as ev
from app.core.engine.client import EngineClient
from app.core.errors import one_line
from app.core.jobs import CancelToken
from app.server.errors import ApiError
from app.server.wire import ChatRequest, finish, stop_at


class Generation:
    """The engine's chat job for one request, as text pieces with OpenAI's stop strings.

    A stop string is found in the text as it streams (the engine knows only the format's
    own stop tokens): the text before it is sent, the engine is cancelled, and its
    ``Finished`` still carries the token counts.
    """

    def __init__(self, engine: EngineClient, request: ChatRequest) -> None:
        self.cancel = CancelToken()
        self._events: Iterator[ev.EngineEvent] = engine.chat(
            request.messages, request.sampling, self.cancel, tools=request.tools
        )
        self._stops = request.stop
        self._pending = ""  # text held back: it may be the start of a stop string
        self._ready: deque[str] = deque()
        self._started = False
        self._stopped = False  # a stop string was found
        self.sent_text = False
        self.finished: ev.Finished | None = None
        self.failed: ev.Failed | ev.EngineCrashed | None = None

    @property
    def finish_reason(self) -> str:
        """OpenAI's ``finish_reason`` (a stop string found: "stop", whatever the engine says)."""
        if self._stopped or self.finished is None:
            return "stop"
        return finish(self.finished)

    @property
    def done(self) -> bool:
        """The engine's job has ended."""
        return self.finished is not None or self.failed is not None

    async def start(self) -> None:
        """Run up to the first text (or the end), so a refusal can still be an HTTP error.

        Raises:
            ApiError: the engine refused the request before any text.
        """
        while not self._ready and not self.done:
            await self._pull()
        if self.failed is not None and not self._ready:
            raise api_error(self.failed)

    async def pieces(self) -> AsyncIterator[str]:
        """The reply's text as it comes; ``finished`` or ``failed`` is set at the end."""
        while True:
            while self._ready:
                self.sent_text = True
                yield self._ready.popleft()
            if self.done:
                return
            await self._pull()

    def close(self) -> None:
        """Cancel the job and wait for the engine to end it (blocking: call from a thread)."""
        self.cancel.cancel()
        if self._started:  # an unstarted job never reached the engine
            for _ in self._events:  # the engine answers a stop within one token
                pass

    async def _pull(self) -> None:
        self._started = True
        event = await anyio.to_thread.run_sync(next, self._events, None)
        if isinstance(event, ev.Token):
            self._take(event.text)
        elif isinstance(event, ev.Finished):
            if self._pending and not self._stopped:
                self._ready.append(self._pending)
            self._pending = ""
            self.finished = event
        elif isinstance(event, ev.Failed | ev.EngineCrashed):
            self.failed = event
        elif event is None:
            self.failed = ev.Failed("The engine ended the reply without a result.")

    def _take(self, text: str) -> None:
        if self._stopped or not text:
            return
        pending = self._pending + text
        if not self._stops:
            self._ready.append(pending)
            self._pending = ""
            return
        cut = stop_at(pending, self._stops)
        if cut >= 0:
            self._stopped = True
            self.cancel.cancel()
            out, self._pending = pending[:cut], ""
        else:
            keep = max((_overlap(pending, s) for s in self._stops), default=0)
            out, self._pending = pending[: len(pending) - keep], pending[len(pending) - keep :]
        if out:
            self._ready.append(out)


def _overlap(text: str, stop: str) -> int:
    """The longest end of ``text`` that begins ``stop``."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0


def api_error(failure: ev.Failed | ev.EngineCrashed) -> ApiError:
    """The HTTP error for an engine failure; a full context gives its numbers (400)."""
    if isinstance(failure, ev.EngineCrashed):
        return ApiError(500, f"The engine crashed: {failure.message}", "engine_crashed")
    message = one_line(failure.message, failure.hint)
    code = "context_length_exceeded" if failure.context_full else "invalid_request"
    return ApiError(400, message, code)
