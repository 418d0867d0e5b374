"""The first render of a model file's chat template, in a child process with hard limits.

The metered sandbox (:mod:`template_sandbox`) bounds a template from inside Python. What it
cannot bound (one long step in C, Jinja's compiler, a mistake in the metering itself) is
bounded here: the first render of an untrusted template runs in a child process
(:func:`main`, in an isolated interpreter) that limits its own address space
(``RLIMIT_AS``, where the system has it) before it reads the template, is killed
:data:`~app.core.chat.template_budget.TIME_LIMIT_S` after it got it, and is watched for
resident memory from here (the limit on systems without ``RLIMIT_AS``). The verdict says
whether Herd may render the template in its own process afterwards. Verdicts are cached
per template and variables; when no child can be started the probe runs here, metered.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import IO, Any

import psutil

from app.core.chat.template_budget import (
    MAX_TEMPLATE_CHARS,
    MEMORY_LIMIT_BYTES,
    TIME_LIMIT_S,
    OverBudget,
)
from app.core.chat.template_sandbox import compile_template, over_budget_error, render_template
from app.core.child_argv import python_call_argv
from app.core.errors import TemplateError

__all__ = ["ProbeResult", "ProbeVerdict", "probe_template"]

logger = logging.getLogger(__name__)

_READY = "herd-template-probe-ready"
_STARTUP_TIMEOUT_S = 30.0  # a cold interpreter on a busy machine; not the template's time
_REPLY_MARGIN_S = 0.5  # for the child to write its verdict after its own deadline
_POLL_S = 0.02
_MAX_RENDERED_CHARS = 1 << 16  # the probe conversation renders to a few hundred


class ProbeVerdict(Enum):
    """What the first render of a template showed."""

    RENDERED = "rendered"
    REFUSED = "refused"
    """It compiled but failed on the probe (``raise_exception``, a Python error)."""
    BROKEN = "broken"
    """It does not compile."""
    OVER_BUDGET = "over_budget"
    """It ran past the time or memory limit, or took the check process down."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The verdict on a template and what it rendered.

    Attributes:
        verdict: What happened.
        rendered: The rendering (cut at 64 KiB characters), for :attr:`ProbeVerdict.RENDERED`.
        user_message: Why it failed, for people; empty when it rendered.
        hint: What to do about it.
    """

    verdict: ProbeVerdict
    rendered: str = ""
    user_message: str = ""
    hint: str = ""

    @property
    def usable(self) -> bool:
        """Whether Herd may render this template in its own process."""
        return self.verdict in (ProbeVerdict.RENDERED, ProbeVerdict.REFUSED)

    def text(self) -> str:
        """The rendering.

        Raises:
            TemplateError: The template did not render (the reason as its message).
        """
        if self.verdict is not ProbeVerdict.RENDERED:
            raise TemplateError(self.user_message, self.hint)
        return self.rendered


def probe_template(source: str, context: Mapping[str, Any]) -> ProbeResult:
    """Render ``source`` once with ``context`` in a child process bounded to 2 s / 256 MiB.

    Args:
        source: A GGUF's ``tokenizer.chat_template``.
        context: JSON-ready template variables (``messages``, ``bos_token`` ...).
    """
    # Key order is kept: tojson writes objects (tool definitions, arguments) in their order.
    return _probe(source, json.dumps(dict(context)))


@lru_cache(maxsize=16)
def _probe(source: str, context_json: str) -> ProbeResult:
    if len(source) > MAX_TEMPLATE_CHARS:  # not worth a process
        return render_here(source, json.loads(context_json))
    payload = json.dumps({"template": source, "context": json.loads(context_json)}).encode()
    result = _run_child(payload)
    if result is None:
        logger.warning("no template check process could run; checking the template here")
        return render_here(source, json.loads(context_json))
    return result


def render_here(
    source: str, context: Mapping[str, Any], deadline: float | None = None
) -> ProbeResult:
    """Render in this process, metered, and give the verdict (the child's work)."""
    try:
        rendered = render_template(source, context, deadline=deadline)
    except TemplateError as exc:
        if isinstance(exc.__cause__, OverBudget | MemoryError):
            verdict = ProbeVerdict.OVER_BUDGET
        else:
            verdict = ProbeVerdict.REFUSED if _compiles(source) else ProbeVerdict.BROKEN
        return ProbeResult(verdict, "", exc.user_message, exc.hint)
    return ProbeResult(ProbeVerdict.RENDERED, rendered[:_MAX_RENDERED_CHARS])


def _compiles(source: str) -> bool:
    try:
        compile_template(source)
    except Exception:  # any failure to compile, whatever Jinja raises
        return False
    return True


def _over_budget(detail: str) -> ProbeResult:
    error = over_budget_error(detail)
    return ProbeResult(ProbeVerdict.OVER_BUDGET, "", error.user_message, error.hint)


def _child_command() -> list[str]:
    # Isolated (python -I, with this very copy of Herd first on the path; or the bundle).
    return python_call_argv("app.core.chat.template_probe", "main")


def _run_child(payload: bytes) -> ProbeResult | None:
    """The child's verdict on the template in ``payload``; None when no child could run."""
    try:
        proc = subprocess.Popen(
            _child_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except OSError:
        logger.warning("cannot start the template check process", exc_info=True)
        return None
    stdin, stdout = proc.stdin, proc.stdout
    if stdin is None or stdout is None:  # never: both are pipes
        proc.kill()
        return None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(
        target=_pump, args=(stdout, lines), name="template-probe-reader", daemon=True
    )
    reader.start()
    output: list[str] = []
    try:
        ready = _next_line(lines, time.monotonic() + _STARTUP_TIMEOUT_S, output)
        baseline = _baseline(ready)
        if baseline is None:
            logger.warning("template check process did not start: %s", "".join(output)[-2000:])
            return None
        try:
            stdin.write(payload)
            stdin.close()
        except OSError:
            pass  # it died reading; its exit is the verdict
        return _await_verdict(proc, lines, baseline, output)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join()
        for pipe in (stdin, stdout):
            try:
                pipe.close()
            except OSError:  # the child is gone; unsent bytes do not matter
                pass


def _await_verdict(
    proc: subprocess.Popen[bytes], lines: queue.Queue[str | None], baseline: int, output: list[str]
) -> ProbeResult:
    deadline = time.monotonic() + TIME_LIMIT_S + _REPLY_MARGIN_S
    try:
        watched: psutil.Process | None = psutil.Process(proc.pid)
    except psutil.Error:
        watched = None
    while True:
        try:
            line = lines.get(timeout=_POLL_S)
        except queue.Empty:
            if time.monotonic() > deadline:
                return _over_budget(f"it was still running after {TIME_LIMIT_S:g} s")
            if watched is not None and _rss(watched) > baseline + MEMORY_LIMIT_BYTES:
                return _over_budget(f"it used more than {MEMORY_LIMIT_BYTES >> 20} MiB")
            continue
        if line is None:
            code = proc.wait()
            logger.warning("template check process ended (%s): %s", code, "".join(output)[-2000:])
            return _over_budget(f"the check process ended with code {code}")
        try:
            reply = json.loads(line)
            return ProbeResult(ProbeVerdict(reply["verdict"]), *reply["fields"])
        except (ValueError, KeyError, TypeError):
            output.append(line)


def _next_line(lines: queue.Queue[str | None], deadline: float, output: list[str]) -> str | None:
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            return None
        if line is None or line.startswith(_READY):
            return line
        output.append(line)
    return None


def _baseline(ready: str | None) -> int | None:
    """The child's resident memory when it said it was ready; None: it never did."""
    words = (ready or "").split()
    if len(words) != 2 or words[0] != _READY or not words[1].isdigit():
        return None
    return int(words[1])


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


def _pump(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", errors="replace"))
    lines.put(None)


def _limit_address_space() -> None:
    try:
        import resource  # POSIX only
    except ImportError:
        return  # Windows: the parent watches the resident memory
    limit = psutil.Process().memory_info().vms + MEMORY_LIMIT_BYTES
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        pass  # e.g. macOS refuses some values; the parent watches the resident memory


def main() -> int:
    """The child: limit itself, say it is ready, render the template it is sent."""
    _limit_address_space()
    out = sys.stdout
    out.write(f"{_READY} {psutil.Process().memory_info().rss}\n")
    out.flush()
    request = json.loads(sys.stdin.buffer.read())
    result = render_here(request["template"], request["context"], time.monotonic() + TIME_LIMIT_S)
    fields = [result.rendered, result.user_message, result.hint]
    out.write(json.dumps({"verdict": result.verdict.value, "fields": fields}) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
