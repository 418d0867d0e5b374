"""Watching an engine that uses other machines' devices (``herd worker``).

llama.cpp's RPC client has no timeouts: a worker that is killed makes it abort (the
engine process ends), and one that hangs (a stopped process, a cable pulled) leaves it
waiting forever in a read. So while a load uses workers, the engine's client watches:
after ``stall_s`` seconds without an event from the engine, it asks the workers' info
ports, and when one does not answer it stops the engine (a long prompt read by workers
that do answer is left alone). Either way the crash is told in these words: which
worker stopped answering.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from app.core import events as ev
from app.core.hardware.workers import answering

DEFAULT_STALL_S = 60.0  # a token, or a load's 1% of progress, takes less on any usable link


@dataclass(frozen=True, slots=True)
class RpcWatch:
    """The workers a loaded model uses, and how long the engine may go silent."""

    endpoints: tuple[str, ...]
    stall_s: float = DEFAULT_STALL_S

    def hung(self) -> bool:
        """Whether a worker does not answer its info port now (2 s each at most)."""
        return bool(answering(self.endpoints)[1])

    def explain(self, crash: ev.EngineCrashed, *, stalled: bool) -> ev.EngineCrashed:
        """``crash`` told as the worker that stopped answering, when one did."""
        _, silent = answering(self.endpoints)
        if stalled:
            what = f"nothing came from the engine for {self.stall_s:.0f} s, so it was stopped"
        else:
            what = "the engine stopped (llama.cpp's RPC client ends when a worker is lost)"
        if silent:
            names = " and ".join(silent)
            message = (
                f"The worker {names} stopped answering: {what}. Your chat is kept; the next "
                "load plans without it."
            )
        elif stalled:
            message = f"The engine stopped answering: {what}. Your chat is kept."
        else:
            return crash
        return dataclasses.replace(crash, message=message)
