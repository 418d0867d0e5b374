"""Whose turn it is on the engine: one reply at a time, the window's or the server's.

The window's local server shares the window's engine. Its engine process answers requests
in order, but a reply waiting behind another gives no sign of life, and a stop sent for one
request can end the one before it. So each reply first takes the engine's one turn, in the
order they come: a window chat waits for a server request's reply and the other way round;
their tokens never interleave, and Stop (or a client leaving) ends only its own reply.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio

from app.core import events as ev
from app.core.jobs import CancelToken

POLL_S = 0.05
WINDOW = "window"
SERVER = "server"

E = TypeVar("E")


class EngineTurn:
    """The one turn on an engine; taken from any thread, given back from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a Lock, not an RLock: any thread may release it
        self._guard = threading.Lock()  # guards holder and its token
        self._holder = ""
        self._token: CancelToken | None = None

    @property
    def holder(self) -> str:
        """Who has the turn ("" when free): :data:`WINDOW` or :data:`SERVER`."""
        return self._holder

    def try_take(self, who: str, cancel: CancelToken | None = None) -> bool:
        """Take the turn if it is free; ``cancel`` is what :meth:`interrupt` cancels."""
        if not self._lock.acquire(blocking=False):
            return False
        with self._guard:
            self._holder, self._token = who, cancel
        return True

    def take(self, who: str, cancel: CancelToken) -> bool:
        """Wait for the turn (blocking); False when ``cancel`` is cancelled first."""
        while not cancel.cancelled:
            if self._lock.acquire(timeout=POLL_S):
                with self._guard:
                    self._holder, self._token = who, cancel
                if cancel.cancelled:  # cancelled while taking it: not wanted any more
                    self.give_back()
                    return False
                return True
        return False

    async def take_async(self, who: str, cancel: CancelToken | None = None) -> None:
        """Wait for the turn without blocking the event loop (cancellable there)."""
        while not self.try_take(who, cancel):
            await anyio.sleep(POLL_S)

    def give_back(self) -> None:
        """End the turn: the next in line goes."""
        with self._guard:
            self._holder, self._token = "", None
        self._lock.release()

    def interrupt(self, who: str) -> bool:
        """Stop ``who``'s reply if it has the turn (a model is being changed); True if so."""
        with self._guard:
            token = self._token if self._holder == who else None
        if token is None:
            return False
        token.cancel()
        return True


def in_turn(
    turn: EngineTurn | None, job: Callable[[CancelToken], Iterator[E]], who: str = WINDOW
) -> Callable[[CancelToken], Iterator[E | ev.Notice | ev.Finished]]:
    """``job`` (an engine job of the window) run in its turn on the engine.

    While it waits it says so (a Notice); cancelled while waiting, it ends as a reply
    stopped before its first token does (a Finished with nothing generated).
    """
    if turn is None:
        return job

    def waited(cancel: CancelToken) -> Iterator[E | ev.Notice | ev.Finished]:
        if not turn.try_take(who, cancel):
            yield ev.Notice("Waiting for the local server to finish a request…")
            if not turn.take(who, cancel):
                yield ev.Finished(0, 0, 0.0, 0.0, ev.StopReason.USER)
                return
            yield ev.Notice("")
        try:
            yield from job(cancel)
        finally:
            turn.give_back()

    return waited
