"""Run llama.cpp's quantizer in a child process, as a job: progress, cancel, clear failures.

``llama_model_quantize`` has no progress callback and cannot be interrupted, and a native
abort would take the caller with it. So it runs in a child
(:mod:`app.core.engine.quantizer_child`, the only side that loads llama.cpp), and this
parent watches the output grow against the expected size (progress and ETA), kills the
child when the token is cancelled, and turns llama.cpp's "failed to quantize" log line
into a :class:`QuantizeError`. Deleting a partial output is the caller's job
(:mod:`quantize.job` writes to a temporary name and renames on success).
"""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from app.core.child_argv import python_module_argv
from app.core.engine.process import engine_child_env
from app.core.errors import HerdError
from app.core.jobs import CancelToken

logger = logging.getLogger(__name__)

POLL_S = 0.2
_FAILED = re.compile(r"failed to quantize: (.+)")
_TENSOR = re.compile(r"\[\s*\d+/\s*\d+\]\s+(\S+)")  # "[  12/  55] blk.1.attn_q.weight - ..."


class QuantizeError(HerdError, RuntimeError):
    """A quantization that could not be done (the message says why)."""


@dataclass(frozen=True, slots=True)
class QuantizeSpec:
    """What the child hands to ``llama_model_quantize`` (types as ggml/llama numbers)."""

    src: str  # the source (its first part, for a split model)
    dst: str  # the output file, or with keep_split the prefix of its parts
    ftype: int
    overrides: tuple[tuple[str, int], ...] = ()  # (regex, ggml type) -> tt_overrides
    token_embd: int | None = None
    output: int | None = None
    imatrix: str | None = None  # an .npz of name -> float32 values
    keep_split: bool = False
    threads: int = 0  # 0: all cores
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class QuantizeProgress:
    """Bytes written so far against the expected size, and the time left."""

    fraction: float
    written: int
    expected: int
    elapsed_s: float
    eta_s: float | None  # None until there is enough to go on


@dataclass(frozen=True, slots=True)
class QuantizeFinished:
    """The child finished writing ``outputs``."""

    outputs: tuple[Path, ...]
    written: int
    seconds: float


@dataclass(frozen=True, slots=True)
class QuantizeCancelled:
    """The job was cancelled; the child is gone."""


QuantizeEvent = QuantizeProgress | QuantizeFinished | QuantizeCancelled


def output_paths(spec: QuantizeSpec, n_parts: int) -> tuple[Path, ...]:
    """The files the child writes: one, or with keep_split one per source part."""
    if not spec.keep_split or n_parts <= 1:
        return (Path(spec.dst),)
    return tuple(Path(f"{spec.dst}-{i + 1:05d}-of-{n_parts:05d}.gguf") for i in range(n_parts))


def _written(paths: tuple[Path, ...]) -> int:
    total = 0
    for p in paths:
        try:
            total += p.stat().st_size
        except OSError:
            continue
    return total


def failure_message(log: str) -> str:
    """llama.cpp's reason from the child's log, with the tensor it was writing."""
    found = _FAILED.findall(log)
    if found:
        tensors = _TENSOR.findall(log)
        where = f" (while writing {tensors[-1]})" if tensors else ""
        return found[-1].strip() + where
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def run_quantizer(
    spec: QuantizeSpec,
    expected: int,
    cancel: CancelToken,
    *,
    n_parts: int = 1,
    log_path: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[QuantizeEvent]:
    """Quantize in a child; yields progress, then finished or cancelled.

    Raises:
        QuantizeError: the child failed (llama.cpp's reason) or died from a signal.
    """
    outputs = output_paths(spec, n_parts)
    spec_path = log_path.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(asdict(spec)), encoding="utf-8")
    argv = python_module_argv("app.core.engine.quantizer_child", str(spec_path))
    started = time.perf_counter()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=engine_child_env(env),
            start_new_session=True,  # Ctrl+C in a terminal reaches the parent, which cancels
        )
    try:
        while proc.poll() is None:
            if cancel.wait(POLL_S):
                _stop(proc)
                yield QuantizeCancelled()
                return
            written = _written(outputs)
            elapsed = time.perf_counter() - started
            fraction = min(written / expected, 0.999) if expected > 0 else 0.0
            eta = elapsed * (1 - fraction) / fraction if fraction > 0.02 else None
            yield QuantizeProgress(fraction, written, expected, elapsed, eta)
    finally:
        if proc.poll() is None:  # closed early (an exception in the caller): never leave it
            _stop(proc)
        spec_path.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            reason = f"llama.cpp's quantizer crashed ({name})"
        else:
            reason = failure_message(text)
        raise QuantizeError(f"Quantizing failed: {reason}", log_path=str(log_path))
    yield QuantizeFinished(outputs, _written(outputs), seconds)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()
