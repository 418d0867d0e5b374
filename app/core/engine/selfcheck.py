"""The engine self-check: does llama.cpp decode correctly on this machine, and how.

Before the first real load on a machine, a child process loads a tiny Llama 4 MoE written
at run time (:mod:`app.core.engine.probe_model`: Q8_0 and Q4_0 matrices, which llama.cpp
repacks for AMX, AVX and NEON) and decodes a few tokens. A child that dies from a signal,
or logits that are not finite, fail the configuration, and the next one is tried with one
more fast path turned off (:data:`~app.core.engine.engine_config.CANDIDATES`). The first
that works is recorded in the state folder and applied to every load, until the llama.cpp
build, the CPU or the GPUs change. The child is :mod:`app.core.engine.selfcheck_child`
(the engine side: only it loads llama.cpp).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.core.child_argv import NO_WINDOW, python_module_argv
from app.core.engine.engine_config import (
    CANDIDATES,
    Attempt,
    CheckRecord,
    EngineConfig,
    read_record,
    write_record,
)
from app.core.engine.probe_model import probe_model_path
from app.core.engine.process import engine_child_env
from app.core.hardware.cpu import CpuInfo, probe_cpu
from app.core.paths import AppPaths

logger = logging.getLogger(__name__)

# llama.cpp's AMX log lines ("AMX model buffer", "amx repack ...", ggml_backend_amx_*), not
# any "amx" (a user's folder may be called that)
_AMX = r"\bAMX\b|(?i:\bamx[ _](repack|buffer)|ggml_backend_amx)"
ATTEMPT_TIMEOUT_S = 30.0  # one configuration; a hang counts as a failure


# -- the parent: when to check, running the attempts, the verdict in words -----------------
def llama_build() -> dict[str, Any]:
    """llama-cpp-python's version and its native libraries (name, size, mtime), unimported."""
    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    libs: list[tuple[str, int, int]] = []
    spec = importlib.util.find_spec("llama_cpp")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "lib"
        for lib in sorted(folder.glob("*")) if folder.is_dir() else []:
            try:
                st = lib.stat()
            except OSError:
                continue
            libs.append((lib.name, st.st_size, st.st_mtime_ns))
    return {"llama_cpp_python": version, "libraries": libs}


def nvidia_gpus(proc: Path = Path("/proc/driver/nvidia/gpus")) -> list[str]:
    """NVIDIA GPU models from the driver's files on Linux (cheap: no tool is started)."""
    found = []
    for info in sorted(proc.glob("*/information")) if proc.is_dir() else []:
        try:
            for line in info.read_text(errors="replace").splitlines():
                if line.startswith("Model:"):
                    found.append(line.partition(":")[2].strip())
        except OSError:
            continue
    return found


def fingerprint(cpu: CpuInfo, gpus: Sequence[str], build: Mapping[str, Any]) -> str:
    """What the verdict depends on: the llama.cpp build, the CPU and the GPUs."""
    key = {
        "build": build,
        "cpu": [cpu.model, cpu.arch, list(cpu.features)],
        "gpus": list(gpus),
        "python": sys.version_info[:2],
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def machine_fingerprint() -> str:
    """This machine's fingerprint (about a millisecond: files only)."""
    return fingerprint(probe_cpu(), nvidia_gpus(), llama_build())


def ensure_checked(
    paths: AppPaths, *, force: bool = False, env: Mapping[str, str] | None = None
) -> CheckRecord:
    """The verdict for this machine: the recorded one, or a new check when anything changed.

    Blocking (up to a few seconds on a new machine): call it off the GUI thread.
    """
    record = None if force else recorded(paths)
    return record if record is not None else check_and_keep(paths, env=env)


def recorded(paths: AppPaths) -> CheckRecord | None:
    """The verdict kept for this very machine (None: none yet, or the machine changed)."""
    record = read_record(paths.state)
    return record if record is not None and record.fingerprint == machine_fingerprint() else None


def check_and_keep(paths: AppPaths, *, env: Mapping[str, str] | None = None) -> CheckRecord:
    """Run the self-check now and keep its verdict, unless it says nothing of llama.cpp."""
    record = run_self_check(paths, machine_fingerprint(), env=env)
    if record.conclusive:  # else it is checked again next time
        write_record(paths.state, record)
    return record


def remember_crash(paths: AppPaths, record: CheckRecord, safe: EngineConfig, why: str) -> None:
    """A load in ``record.chosen`` crashed at its first decode: keep ``safe`` from now on."""
    attempt = Attempt(record.chosen or EngineConfig(), False, why, 0.0)
    updated = CheckRecord(
        fingerprint=record.fingerprint,
        attempts=(*record.attempts, attempt),
        chosen=safe,
        cause=why,
        seconds=record.seconds,
        checked_at=time.time(),
        system_info=record.system_info,
        devices=record.devices,
    )
    write_record(paths.state, updated)


def run_self_check(
    paths: AppPaths,
    fp: str,
    *,
    candidates: Sequence[EngineConfig] = CANDIDATES,
    model: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> CheckRecord:
    """Try ``candidates`` in order on the probe model (or ``model``) until one decodes."""
    started = time.perf_counter()
    model = model or probe_model_path(paths.cache)
    attempts: list[Attempt] = []
    facts: dict[str, Any] = {}
    for config in candidates:
        attempt, seen = _attempt(model, config, env)
        facts = {**seen, **facts}  # the first child to report them wins
        attempts.append(attempt)
        logger.info("engine self-check: %s: %s", config.name, attempt.outcome)
        if attempt.ok:
            break
    chosen = attempts[-1].config if attempts and attempts[-1].ok else None
    system_info = str(facts.get("system_info", ""))
    return CheckRecord(
        fingerprint=fp,
        attempts=tuple(attempts),
        chosen=chosen,
        cause=explain(attempts, system_info),
        seconds=time.perf_counter() - started,
        checked_at=time.time(),
        system_info=system_info,
        devices=tuple(str(d) for d in facts.get("devices", [])),
        new=True,
    )


def _attempt(
    model: Path, config: EngineConfig, env: Mapping[str, str] | None
) -> tuple[Attempt, dict[str, Any]]:
    child_env = engine_child_env(env)
    argv = python_module_argv("app.core.engine.selfcheck_child", str(model))
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [*argv, json.dumps(config.to_dict())],
            capture_output=True,
            timeout=ATTEMPT_TIMEOUT_S,
            env=child_env,
            creationflags=NO_WINDOW,
        )
    except subprocess.TimeoutExpired as exc:
        seconds = time.perf_counter() - started
        tail = _telling_line((exc.stderr or b"").decode(errors="replace"))
        return Attempt(config, False, f"hung (over {ATTEMPT_TIMEOUT_S:.0f} s)", seconds, tail), {}
    seconds = time.perf_counter() - started
    seen: dict[str, Any] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        try:
            seen.update(json.loads(line))
        except ValueError:
            continue
    log = proc.stderr.decode(errors="replace")
    if proc.returncode < 0:
        outcome = f"crashed ({_signal_name(-proc.returncode)})"
    elif proc.returncode != 0 or "ok" not in seen:
        outcome = str(seen.get("outcome") or f"failed (exit code {proc.returncode})")
    else:
        outcome = str(seen.get("outcome", ""))
    ok = proc.returncode == 0 and bool(seen.get("ok"))
    return Attempt(config, ok, outcome, seconds, "" if ok else _telling_line(log)), seen


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _telling_line(log: str) -> str:
    """The log line that best says what went wrong (an assert, an error, AMX)."""
    lines = [ln.strip(" .") for ln in log.splitlines() if ln.strip(" .")]
    lines = [ln for ln in lines if not ln.startswith(("Using ", "Model metadata:", "CPU :"))]
    needles = (r"GGML_ASSERT", r"(?i)\berror\b", r"Illegal", r"Segmentation", _AMX, r"repack:")
    for needle in needles:
        for line in reversed(lines):
            if re.search(needle, line):
                return line[:300]
    return lines[-1][:300] if lines else ""


def explain(attempts: Sequence[Attempt], system_info: str) -> str:
    """The self-check's verdict in one sentence."""
    if not attempts:
        return "The engine self-check did not run."
    first = attempts[0]
    if first.ok:
        return f"llama.cpp's default configuration works on this machine ({first.outcome})."
    amx = "AMX_INT8 = 1" in system_info or bool(re.search(_AMX, first.log_line))
    path = "llama.cpp's AMX path" if amx else "llama.cpp's repacked CPU weights"
    last = attempts[-1]
    if last.ok:
        off = "it is off" if amx else "they are off"
        how = last.config.describe()
        return f"{path} {first.outcome} on this CPU; {off} (Herd loads models {how})."
    tried = "; ".join(f"{a.config.name}: {a.outcome}" for a in attempts)
    if last.log_line:
        tried += f"; last words: {last.log_line}"
    hint = ""
    if any("SIGILL" in a.outcome for a in attempts):
        hint = (
            " The engine was built for another CPU (an illegal instruction): rebuild it with "
            "`pip cache remove llama_cpp_python`, then `rm -rf .venv` and the set-up again."
        )
    return f"llama.cpp cannot decode on this machine in any configuration ({tried}).{hint}"


def llama_facts(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """llama.cpp's own view (backends, devices, system info), asked in a child process.

    Raises:
        EngineError: the child could not answer (llama.cpp does not import or crashed).
    """
    from app.core.errors import EngineError

    argv = python_module_argv("app.core.engine.selfcheck_child", "--facts")
    proc = None
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            timeout=60,
            env=engine_child_env(env),
            creationflags=NO_WINDOW,
        )
        return dict(json.loads(proc.stdout.decode().strip().splitlines()[-1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        tail = _telling_line(proc.stderr.decode(errors="replace")) if proc is not None else ""
        raise EngineError(f"llama.cpp could not describe this machine ({exc}). {tail}") from exc
