"""How llama.cpp runs on this machine: the self-check's verdict, and where it is kept.

llama.cpp picks its fastest CPU kernels by itself, and some of them crash on some CPUs
(its AMX path on Intel Xeons: llama.cpp issues 20824 and 13678). The self-check
(:mod:`app.core.engine.selfcheck`) finds a configuration that decodes correctly here and
records it in the state folder, keyed by the llama.cpp build, the CPU and the GPUs; every
load applies it. This module holds the value objects and the record, nothing that runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RECORD_FILE = "engine-check.json"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The machine-level knobs the self-check may turn off (all on by default)."""

    use_extra_bufts: bool = True  # llama.cpp's repacked CPU weights (AMX, AVX/NEON layouts)
    gpu: bool = True  # offload to the GPU at all
    threads: int = 0  # 0: the load's own choice; else this many

    @property
    def name(self) -> str:
        """A short name for logs and ``herd doctor``."""
        parts = []
        if not self.use_extra_bufts:
            parts.append("no-repack")
        if not self.gpu:
            parts.append("cpu-only")
        if self.threads:
            parts.append(f"{self.threads}-thread")
        return "+".join(parts) or "default"

    def describe(self) -> str:
        """The configuration in words."""
        if self.name == "default":
            return "in llama.cpp's default configuration"
        words = []
        if not self.use_extra_bufts:
            words.append("without repacked CPU weights (AMX, AVX and NEON layouts)")
        if not self.gpu:
            words.append("without GPU offload")
        if self.threads:
            words.append(f"on {self.threads} thread{'s' if self.threads > 1 else ''}")
        return ", ".join(words)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineConfig:
        """Inverse of to_dict; unknown keys are ignored."""
        return cls(
            use_extra_bufts=bool(data.get("use_extra_bufts", True)),
            gpu=bool(data.get("gpu", True)),
            threads=int(data.get("threads", 0) or 0),
        )


DEFAULT = EngineConfig()
SAFE = EngineConfig(use_extra_bufts=False)
# Tried in this order until one decodes correctly; each gives up one more fast path.
CANDIDATES: tuple[EngineConfig, ...] = (
    DEFAULT,
    SAFE,
    EngineConfig(use_extra_bufts=False, gpu=False),
    EngineConfig(use_extra_bufts=False, gpu=False, threads=1),
)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One configuration tried by the self-check."""

    config: EngineConfig
    ok: bool
    outcome: str  # "decoded 4 tokens", "crashed (SIGSEGV)", "non-finite logits", ...
    seconds: float
    log_line: str = ""  # the most telling line of llama.cpp's log, when it failed

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "config": self.config.name,
            "settings": self.config.to_dict(),
            "ok": self.ok,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 3),
            "log_line": self.log_line,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        """Inverse of to_dict."""
        return cls(
            config=EngineConfig.from_dict(dict(data.get("settings", {}))),
            ok=bool(data.get("ok")),
            outcome=str(data.get("outcome", "")),
            seconds=float(data.get("seconds", 0.0)),
            log_line=str(data.get("log_line", "")),
        )


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """What the self-check found on one machine (or what a crash taught later)."""

    fingerprint: str  # llama.cpp build + CPU + GPUs; a change runs the check again
    attempts: tuple[Attempt, ...]
    chosen: EngineConfig | None  # None: nothing works here
    cause: str  # in words, for the status bar, Settings and `herd doctor`
    seconds: float
    checked_at: float
    system_info: str = ""  # llama_print_system_info() of the build checked
    devices: tuple[str, ...] = ()  # llama.cpp's backend devices, "NAME: description"
    new: bool = field(default=False, compare=False)  # just run (not read back): say it once

    @property
    def works(self) -> bool:
        """Whether some configuration decodes correctly here."""
        return self.chosen is not None

    @property
    def conclusive(self) -> bool:
        """Worth keeping: something worked, or llama.cpp itself crashed or computed garbage.

        A check whose children all failed otherwise (a Python error, a hang, a missing
        file) says nothing about llama.cpp on this CPU; it is run again next time.
        """
        return self.works or any(
            a.outcome.startswith(("crashed", "gave non-finite")) for a in self.attempts
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (also ``herd doctor --json``'s ``self_check``)."""
        return {
            "fingerprint": self.fingerprint,
            "works": self.works,
            "chosen": self.chosen.name if self.chosen else None,
            "chosen_settings": self.chosen.to_dict() if self.chosen else None,
            "cause": self.cause,
            "seconds": round(self.seconds, 3),
            "checked_at": self.checked_at,
            "attempts": [a.to_dict() for a in self.attempts],
            "system_info": self.system_info,
            "devices": list(self.devices),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckRecord:
        """Inverse of to_dict."""
        chosen = data.get("chosen_settings")
        return cls(
            fingerprint=str(data["fingerprint"]),
            attempts=tuple(Attempt.from_dict(a) for a in data.get("attempts", [])),
            chosen=EngineConfig.from_dict(chosen) if isinstance(chosen, dict) else None,
            cause=str(data.get("cause", "")),
            seconds=float(data.get("seconds", 0.0)),
            checked_at=float(data.get("checked_at", 0.0)),
            system_info=str(data.get("system_info", "")),
            devices=tuple(str(d) for d in data.get("devices", [])),
        )


def read_record(state: Path) -> CheckRecord | None:
    """The record kept in the state folder; None when there is none or it is unreadable."""
    path = state / RECORD_FILE
    try:
        return CheckRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("engine check record %s unreadable (%s); checking again", path, exc)
        return None


def write_record(state: Path, record: CheckRecord) -> None:
    """Keep ``record`` in the state folder (atomically; a failure is logged, not raised)."""
    path = state / RECORD_FILE
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        state.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(record.to_dict(), indent=2), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        logger.warning("could not save the engine check to %s: %s", path, exc)
