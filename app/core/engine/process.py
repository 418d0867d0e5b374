"""EngineProcess: the engine process, the pipes to it, and requests run as jobs.

A request is a job: a generator of the engine's events for it that ends with a terminal
event (Loaded, Finished, TokenCount, DeviceList, Unloaded, Failed or EngineCrashed).
Cancelling the job's token sends an out-of-band ``stop`` that the engine sees within one
token (or one graph computation during a long prompt). When the process dies, every
waiting job ends with EngineCrashed, carrying the tail of the engine's log.
:class:`~app.core.engine.client.EngineClient` builds the model-level API on this.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from app.core import events as ev
from app.core.child_argv import NO_WINDOW, python_module_argv
from app.core.engine import protocol as proto
from app.core.errors import EngineError
from app.core.jobs import CancelToken
from app.core.paths import AppPaths

if TYPE_CHECKING:
    from app.core.engine.rpc_watch import RpcWatch

logger = logging.getLogger(__name__)
_TERMINAL = (
    ev.Loaded,
    ev.Unloaded,
    ev.Finished,
    ev.TokenCount,
    ev.DeviceList,
    ev.Failed,
    ev.EngineCrashed,
)
LOG_TAIL_LINES = 20
# A job sleeps until its next event or its cancel token wakes it; this is only the
# safety net for a crash reported before the job was listening.
POLL_S = 1.0
_PROJECT_ROOT = Path(__file__).resolve().parents[3]


def engine_child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process that runs llama.cpp (the engine, the self-check's child).

    ``env`` (default: this process's) with Herd's own package first on the path, and ggml
    told not to attach gdb when it aborts.
    """
    out = dict(os.environ if env is None else env)
    out["GGML_NO_BACKTRACE"] = "1"
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), out.get("PYTHONPATH")) if p)
    return out


class EngineProcess:
    """Starts, talks to and, when it dies, restarts the engine process."""

    def __init__(self, paths: AppPaths, *, env: Mapping[str, str] | None = None) -> None:
        self._paths = paths
        self._env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._retiring: subprocess.Popen[bytes] | None = None  # the one shutdown() ends
        self._pending: dict[int, queue.Queue[ev.EngineEvent | None]] = {}
        self._push: dict[int, Callable[[ev.EngineEvent], bool]] = {}  # see _job
        self._lock = threading.Lock()  # guards _pending
        self._send_lock = threading.Lock()  # one writer at a time on the request pipe
        self._ids = itertools.count(1)
        self._log_offset = 0
        self.facts: ev.ModelFacts | None = None  # the model the process holds
        self.crash: ev.EngineCrashed | None = None
        self.watch: RpcWatch | None = None  # set by a load across workers (rpc_watch)
        self._stalled = False
        self._heard = 0.0  # when the engine last sent anything (for the watch)

    # -- process lifetime ------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        """The engine's log file (llama.cpp's own messages included)."""
        return self._paths.engine_log

    @property
    def alive(self) -> bool:
        """Whether the engine process is running."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The engine process id (for tests and the log)."""
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start a fresh engine process (stopping a running one first)."""
        if self._proc is not None:
            self.shutdown()
        self._paths.logs.mkdir(parents=True, exist_ok=True)
        log = self._paths.engine_log
        self._log_offset = log.stat().st_size if log.exists() else 0
        env = engine_child_env(self._env)
        self._proc = subprocess.Popen(
            python_module_argv("app.core.engine.worker", str(log)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl+C in the terminal reaches the app, not the engine
            creationflags=NO_WINDOW,
        )
        self.facts = None
        self.crash = None
        self._stalled = False
        self._reader = threading.Thread(
            target=self._read_events, args=(self._proc,), name="engine-events", daemon=True
        )
        self._reader.start()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Ask the engine to exit and join it (killing it if it does not)."""
        proc = self._proc
        if proc is None:
            return
        self._retiring = proc  # its exit is expected: the reader must not call it a crash
        if proc.poll() is None:
            try:
                self._send(proto.Request(proto.OP_SHUTDOWN))
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        self._proc = None
        self.facts = None

    def kill(self) -> None:
        """Kill the engine process at once, as the system would when out of memory."""
        if self.alive:
            assert self._proc is not None
            os.kill(self._proc.pid, signal.SIGKILL)

    def _read_events(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._heard = time.monotonic()
            try:
                request_id, event = proto.decode_event(line)
            except (ValueError, KeyError, TypeError):
                logger.warning("engine sent an unreadable line: %r", line[:200])
                continue
            with self._lock:
                target = self._pending.get(request_id)
                push = self._push.get(request_id)
            if push is not None and push(event):
                continue  # handed on at once, on this thread (a reply's text)
            if target is not None:
                target.put(event)
        code = proc.wait()
        if proc is self._retiring:
            # shutdown() ended it: not a crash, but a job still waiting on it must end too
            stopped = ev.Failed("The engine was shut down.", "Load the model again.")
            with self._lock:
                targets = list(self._pending.values())
            for target in targets:
                target.put(stopped)
            return
        crash = self._crash_event(code)
        if self.watch is not None:
            crash = self.watch.explain(crash, stalled=self._stalled)
        self.crash = crash
        self.facts = None
        with self._lock:
            targets = list(self._pending.values())
        for target in targets:
            target.put(crash)

    def _crash_event(self, code: int | None) -> ev.EngineCrashed:
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else ""
            how = {
                "SIGABRT": "llama.cpp aborted (SIGABRT)",
                "SIGKILL": "it was killed (SIGKILL; the system may have run out of memory)",
                "SIGSEGV": "it crashed (SIGSEGV)",
            }.get(name, f"it was ended by signal {name or -code}")
        else:
            how = f"it exited with code {code}"
        return ev.EngineCrashed(
            message=f"The engine stopped: {how}. Your chat is kept.",
            exit_code=code,
            log_tail=tuple(self.log_tail()),
        )

    def log_tail(self, n: int = LOG_TAIL_LINES) -> list[str]:
        """The last ``n`` lines this engine process wrote to its log."""
        try:
            with open(self._paths.engine_log, "rb") as f:
                f.seek(self._log_offset)
                data = f.read()
        except OSError:
            return []
        lines = data.decode("utf-8", errors="replace").splitlines()
        return [line for line in lines if line.strip()][-n:]

    # -- requests --------------------------------------------------------------------
    def _send(self, request: proto.Request) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise EngineError("The engine is not running.", "Start it again (Reload).")
        with self._send_lock:
            proc.stdin.write(request.encode())
            proc.stdin.flush()

    def _job(
        self,
        op: str,
        args: dict[str, Any],
        cancel: CancelToken | None,
        push: Callable[[ev.EngineEvent], bool] | None = None,
    ) -> Iterator[ev.EngineEvent]:
        """Send a request and yield its events until its terminal one.

        ``push``, when given, sees each event first, on the thread that reads the engine's
        pipe; the events it takes (returns True for) are not yielded. The window's token
        path uses it: a reply's text goes from the pipe to the view with no thread between.
        """
        if not self.alive:
            if self.crash is not None:
                yield self.crash
                return
            self.start()
        request_id = next(self._ids)
        events: queue.Queue[ev.EngineEvent | None] = queue.Queue()  # None: wake up
        with self._lock:
            self._pending[request_id] = events
            if push is not None:
                self._push[request_id] = push
        if cancel is not None:
            cancel.on_cancel(lambda: events.put(None))  # Stop lands at once, no polling
        stop_sent = False
        finished = False
        try:
            try:
                self._send(proto.Request(op, request_id, args))
            except OSError:
                pass  # the reader thread reports the crash
            self._heard = time.monotonic()
            while True:
                if cancel is not None and cancel.cancelled and not stop_sent:
                    self._send_stop(request_id)
                    stop_sent = True
                try:
                    event = events.get(timeout=POLL_S)
                except queue.Empty:
                    watch = self.watch
                    quiet = time.monotonic() - self._heard
                    if watch and self.alive and quiet > watch.stall_s and watch.hung():
                        self._stalled = True  # a worker hangs: llama.cpp would wait forever
                        self.kill()
                    if not self.alive and self.crash is not None and events.empty():
                        # the reader may not have posted the crash yet; give it a moment
                        if self._reader is not None:
                            self._reader.join(1.0)
                        if events.empty():
                            yield self.crash
                            finished = True
                            return
                    continue
                if event is None:  # woken by the cancel token: send the stop (loop top)
                    continue
                if isinstance(event, _TERMINAL):
                    finished = True
                yield event
                if finished:
                    return
        finally:
            if not finished and not stop_sent:
                self._send_stop(request_id)  # the consumer walked away: stop the engine's work
            with self._lock:
                self._pending.pop(request_id, None)
                self._push.pop(request_id, None)

    def _send_stop(self, request_id: int) -> None:
        try:
            self._send(proto.Request(proto.OP_STOP, 0, {"target": request_id}))
        except (OSError, EngineError):
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
