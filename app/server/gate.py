"""One request at a time on the one engine; a bounded line of others waiting their turn."""

from __future__ import annotations

import anyio

from app.core.jobs import CancelToken
from app.server.errors import ApiError
from app.server.turn import SERVER, EngineTurn

RETRY_AFTER_S = 5


class Gate:
    """Lets one request use the engine; up to ``queue_size`` more wait, further ones get 503.

    With a shared ``engine_turn`` (the window's server), the request in front also waits
    for the window's reply to end before it starts.
    """

    def __init__(self, queue_size: int, engine_turn: EngineTurn | None = None) -> None:
        self._turn = anyio.Semaphore(1)  # not a Lock: the turn may end in another task
        self._queue_size = queue_size
        self._engine_turn = engine_turn
        self.waiting = 0

    @property
    def busy(self) -> bool:
        """Whether a request (or the window's reply) is using the engine now."""
        shared = self._engine_turn is not None and bool(self._engine_turn.holder)
        return self._turn.value == 0 or shared

    async def enter(self, cancel: CancelToken | None = None) -> None:
        """Wait for the engine (``cancel``: what a model change in the window cancels).

        Raises:
            ApiError: 503 with ``Retry-After``: the line is full.
        """
        if self._turn.value == 0 and self.waiting >= self._queue_size:
            raise ApiError(
                503,
                f"The server is busy ({self.waiting} requests are waiting); try again shortly.",
                "server_busy",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.waiting += 1
        try:
            await self._turn.acquire()
        finally:
            self.waiting -= 1
        if self._engine_turn is not None:
            try:
                await self._engine_turn.take_async(SERVER, cancel)
            except BaseException:
                self._turn.release()
                raise

    def leave(self) -> None:
        """End this request's turn: the next one in line goes."""
        if self._engine_turn is not None:
            self._engine_turn.give_back()
        self._turn.release()
