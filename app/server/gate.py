"""One request at a time on the one engine; a bounded line of others waiting their turn."""

from __future__ import annotations

import anyio

from app.server.errors import ApiError

RETRY_AFTER_S = 5


class Gate:
    """Lets one request use the engine; up to ``queue_size`` more wait, further ones get 503."""

    def __init__(self, queue_size: int) -> None:
        self._turn = anyio.Semaphore(1)  # not a Lock: the turn may end in another task
        self._queue_size = queue_size
        self.waiting = 0

    @property
    def busy(self) -> bool:
        """Whether a request is using the engine now."""
        return self._turn.value == 0

    async def enter(self) -> None:
        """Wait for the engine.

        Raises:
            ApiError: 503 with ``Retry-After``: the line is full.
        """
        if self.busy and self.waiting >= self._queue_size:
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

    def leave(self) -> None:
        """End this request's turn: the next one in line goes."""
        self._turn.release()
