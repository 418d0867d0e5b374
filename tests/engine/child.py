"""Run a test's llama.cpp work in a child process: a native crash fails one test, not the run.

llama.cpp aborts or crashes the whole process on some models and CPUs (its AMX path on
Intel Xeons segfaults at every decode: issue 11). Called inside pytest's own process it
would end the run with "Fatal Python error: Segmentation fault". So a test hands a
module-level function to :func:`run_in_child`, which runs it in a fresh ("spawn") process
and brings back its picklable result. Checks go in the test itself, on the returned facts,
where pytest's assertion messages work; one child answers for several tests where they use
the same model (:class:`Lazy`), since each spawn costs about half a second.

In the child, GGML_NO_BACKTRACE is set (ggml would otherwise attach gdb on an abort) and
models load the way the engine loads them on this machine: with the self-check's
:class:`~app.core.engine.engine_config.EngineConfig` (the ``engine_config`` fixture) applied
by :func:`herd_llama` or, where llama-cpp-python's own chat handlers are needed,
:func:`plain_llama_params`.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Generic, TypeVar

from app.core.engine.engine_config import EngineConfig

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 120.0
STDERR_TAIL_LINES = 20
_SPAWN = multiprocessing.get_context("spawn")
_in_child = False  # True only in a process started by run_in_child


class ChildCrashed(Exception):
    """The child ended without an answer: killed by a signal, exited, or ran out of time.

    Attributes:
        signal: The signal's name ("SIGSEGV", "SIGABRT", ...) when one ended it, else None.
        exitcode: The child's exit status as multiprocessing reports it (None: timed out).
        stderr: Everything the child wrote to its stderr (llama.cpp's asserts land there).
    """

    def __init__(self, message: str, *, signal: str | None, exitcode: int | None, stderr: str):
        super().__init__(message)
        self.signal = signal
        self.exitcode = exitcode
        self.stderr = stderr


class ChildError(Exception):
    """The child raised an exception that could not be brought back as itself."""


def run_in_child(fn: Callable[..., T], *args: Any, timeout: float = DEFAULT_TIMEOUT_S) -> T:
    """Run ``fn(*args)`` in a fresh process and return its result.

    Args:
        fn: A module-level function of an importable module (``tests.engine.test_x``).
        *args: Its arguments; they and the result must pickle.
        timeout: Seconds before the child is killed and the call fails.

    Raises:
        ChildCrashed: The child died from a signal ("llama.cpp crashed in the child:
            SIGSEGV"), exited without an answer or timed out; the message ends with the
            last lines of its stderr.
        Exception: Whatever ``fn`` raised in the child (the same type where it pickles,
            else :class:`ChildError`), with the child's traceback as a note.
    """
    __tracebackhide__ = True  # pytest: show the test's line and the child's traceback
    module, qualname = fn.__module__, fn.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        raise TypeError(f"{qualname} must be a module-level function of an importable module")
    payload = pickle.dumps((module, qualname, args))  # fails here, clearly, if args do not pickle
    fd, log_name = tempfile.mkstemp(prefix="herd-child-", suffix=".stderr")
    os.close(fd)
    log = Path(log_name)
    reader, writer = _SPAWN.Pipe(duplex=False)
    proc = _SPAWN.Process(target=_child_main, args=(writer, payload, log_name), daemon=True)
    try:
        proc.start()
        writer.close()  # the child holds the only write end: its death reads as EOF here
        answer = _receive(reader, timeout)
        proc.join(timeout if answer is not None else 0)
        if proc.is_alive():  # no answer in time, or hung on the way out: both time out
            answer = None
            proc.kill()
            proc.join()
    finally:
        reader.close()
        if proc.is_alive():
            proc.kill()
            proc.join()
        stderr = log.read_text(encoding="utf-8", errors="replace")
        log.unlink(missing_ok=True)
    if stderr:
        sys.stderr.write(stderr)  # pytest shows it under "Captured stderr" when the test fails
    return _outcome(f"{module}.{qualname}", answer, proc.exitcode, stderr, timeout)


class Lazy(Generic[T]):
    """``run_in_child(fn, *args)`` run once, on first call, for every test that needs it.

    Made in a module- or session-scoped fixture and called inside each test, so a crash
    fails each of those tests (naming the signal) instead of erroring their setup, and the
    child runs once however many tests read its answer.
    """

    def __init__(self, fn: Callable[..., T], *args: Any, timeout: float = DEFAULT_TIMEOUT_S):
        self._call = (fn, args, timeout)
        self._result: tuple[bool, Any] | None = None

    def __call__(self) -> T:
        __tracebackhide__ = True
        if self._result is None:
            fn, args, timeout = self._call
            try:
                self._result = (True, run_in_child(fn, *args, timeout=timeout))
            except Exception as exc:
                self._result = (False, exc)
        ok, value = self._result
        if not ok:
            raise value.with_traceback(None)
        return value


# -- in the child: loading models as the engine does on this machine ----------------------
def llama_kwargs(config: EngineConfig, path: Path, **kwargs: Any) -> dict[str, Any]:
    """``Llama`` keyword arguments for ``path`` with ``config``'s threads and GPU applied."""
    kwargs = {"model_path": str(path), **kwargs}
    if config.threads:
        kwargs["n_threads"] = kwargs["n_threads_batch"] = config.threads
    if not config.gpu:
        kwargs["n_gpu_layers"] = 0
    return kwargs


def herd_llama(config: EngineConfig, path: Path, **kwargs: Any) -> Any:
    """Load ``path`` as the engine's :class:`HerdLlama` would on this machine (child only).

    HerdLlama leaves the GGUF's chat templates out of ``.metadata``; for llama-cpp-python's
    own chat handlers load a plain ``llama_cpp.Llama`` inside :func:`plain_llama_params`.
    """
    _require_child()
    from app.core.engine.llama_ext import HerdLlama

    return HerdLlama(use_extra_bufts=config.use_extra_bufts, **llama_kwargs(config, path, **kwargs))


@contextlib.contextmanager
def plain_llama_params(config: EngineConfig) -> Iterator[None]:
    """While active, a plain ``llama_cpp.Llama`` loads with ``config.use_extra_bufts`` (child only).

    Test infrastructure: llama-cpp-python 0.3.36 has no argument for the flag and builds its
    model parameters from ``llama_model_default_params()``, so that function is wrapped for
    the duration, in a throwaway child process only; never in pytest's process or the app,
    which load through HerdLlama.
    """
    _require_child()
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def _defaults() -> Any:
        params = original()
        params.use_extra_bufts = config.use_extra_bufts
        return params

    lib.llama_model_default_params = _defaults
    try:
        yield
    finally:
        lib.llama_model_default_params = original


def _require_child() -> None:
    if not _in_child:
        raise RuntimeError("llama.cpp runs in a child process in tests: use run_in_child")


# -- the mechanics -------------------------------------------------------------------------
def _child_main(conn: Connection, payload: bytes, log_name: str) -> None:
    global _in_child
    _in_child = True
    os.environ["GGML_NO_BACKTRACE"] = "1"  # ggml would otherwise attach gdb on an abort
    sys.stderr.flush()
    log_fd = os.open(log_name, os.O_WRONLY | os.O_APPEND)
    os.dup2(log_fd, 2)  # native writes too (llama.cpp's asserts), for the parent to quote
    os.close(log_fd)
    try:
        module, qualname, args = pickle.loads(payload)
        fn: Any = importlib.import_module(module)
        for part in qualname.split("."):
            fn = getattr(fn, part)
        answer = pickle.dumps(("ok", fn(*args)))
    except BaseException as exc:  # everything goes back, SystemExit and pytest.skip too
        answer = pickle.dumps(_failure(exc))
    sys.stderr.flush()
    conn.send_bytes(answer)
    conn.close()


def _failure(exc: BaseException) -> tuple[str, bytes | None, str, str]:
    text = "".join(traceback.format_exception(exc))
    try:
        blob: bytes | None = pickle.dumps(exc)
        pickle.loads(blob)  # some exceptions pickle but do not unpickle
    except Exception:
        blob = None
    return ("error", blob, f"{type(exc).__qualname__}: {exc}", text)


def _receive(reader: Connection, timeout: float) -> tuple[Any, ...] | None:
    """The child's answer; () when it died without one, None when it ran out of time."""
    if not reader.poll(timeout):
        return None
    try:
        return pickle.loads(reader.recv_bytes())
    except EOFError:
        return ()


def _outcome(
    what: str, answer: tuple[Any, ...] | None, exitcode: int | None, stderr: str, timeout: float
) -> Any:
    __tracebackhide__ = True
    tail = "\n".join(stderr.rstrip().splitlines()[-STDERR_TAIL_LINES:])
    quoted = f"\n--- last lines of the child's stderr ---\n{tail}" if tail else ""
    if answer is None:
        raise ChildCrashed(
            f"{what} did not finish within {timeout:.0f} s in the child (killed){quoted}",
            signal=None,
            exitcode=None,
            stderr=stderr,
        )
    if exitcode is not None and exitcode < 0:
        name = _signal_name(-exitcode)
        when = " after its answer (at exit)" if answer else ""
        raise ChildCrashed(
            f"llama.cpp crashed in the child: {name} (running {what}{when}){quoted}",
            signal=name,
            exitcode=exitcode,
            stderr=stderr,
        )
    if not answer:
        raise ChildCrashed(
            f"{what}: the child exited with code {exitcode} without an answer{quoted}",
            signal=None,
            exitcode=exitcode,
            stderr=stderr,
        )
    if answer[0] == "ok":
        return answer[1]
    _, blob, summary, text = answer
    error: BaseException = pickle.loads(blob) if blob is not None else ChildError(summary)
    error.add_note(f"raised in the child process running {what}:\n{text.rstrip()}")
    raise error


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
