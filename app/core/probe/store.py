"""Probe results kept per model file, plan, context and KV type (``probes.json``).

A model is known by its resolved path, size and modification time: a file replaced by
another quant under the same name starts with no results. One record is kept per (plan,
context, KV type); probing again replaces it. The file is saved atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.core.json_file import read_json, write_json
from app.core.paths import AppPaths
from app.core.probe.result import ProbeResult

PROBES_FILE = "probes.json"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    """What one finished probe found, as kept."""

    plan: str
    n_ctx: int
    kv_type: str
    lengths: tuple[int, ...]
    accuracy: tuple[float | None, ...]  # per length, over every depth
    overall: float
    when: str  # ISO 8601, UTC

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "plan": self.plan,
            "ctx": self.n_ctx,
            "kv_type": self.kv_type,
            "lengths": list(self.lengths),
            "accuracy": list(self.accuracy),
            "overall": self.overall,
            "when": self.when,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ProbeRecord | None:
        """Inverse of to_dict; None for anything unusable."""
        try:
            return cls(
                plan=str(data["plan"]),
                n_ctx=int(data["ctx"]),
                kv_type=str(data["kv_type"]),
                lengths=tuple(int(n) for n in data["lengths"]),
                accuracy=tuple(None if a is None else float(a) for a in data["accuracy"]),
                overall=float(data["overall"]),
                when=str(data["when"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def of(cls, result: ProbeResult) -> ProbeRecord:
        """The record of a finished probe."""
        return cls(
            plan=result.plan,
            n_ctx=result.n_ctx,
            kv_type=result.kv_type,
            lengths=result.lengths,
            accuracy=tuple(result.length_accuracy(n) for n in result.lengths),
            overall=result.overall or 0.0,
            when=datetime.now(UTC).isoformat(timespec="seconds"),
        )


def model_key(path: str | Path) -> str:
    """The model file's identity: resolved path, size and modification time.

    Raises:
        OSError: the file cannot be looked at.
    """
    resolved = Path(path).expanduser().resolve()
    stat = resolved.stat()
    return f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}"


class ProbeStore:
    """Every model's probe records, in one JSON file in the app's data folder."""

    def __init__(self, file: Path) -> None:
        """Read ``file`` (a missing or unreadable one holds nothing)."""
        self._file = file
        self._all: dict[str, list[ProbeRecord]] = {}
        data = read_json(file, "probe results")
        models = data.get("models") if isinstance(data, dict) else None
        for key, records in (models or {}).items():
            if isinstance(records, list):
                kept = [r for r in map(ProbeRecord.from_dict, records) if r is not None]
                self._all[str(key)] = kept

    @classmethod
    def at(cls, paths: AppPaths) -> ProbeStore:
        """The store in the app's data folder."""
        return cls(paths.data / PROBES_FILE)

    def records(self, path: str | Path) -> list[ProbeRecord]:
        """This model file's records, shortest context first (none when it changed)."""
        try:
            key = model_key(path)
        except OSError:
            return []
        return sorted(self._all.get(key, []), key=lambda r: (r.n_ctx, r.kv_type, r.plan))

    def add(self, result: ProbeResult) -> ProbeRecord:
        """Keep a finished probe's record, replacing one of the same plan, context and KV.

        Raises:
            OSError: the model file is gone, or the store could not be written.
        """
        record = ProbeRecord.of(result)
        key = model_key(result.path)
        same = (record.plan, record.n_ctx, record.kv_type)
        kept = [r for r in self._all.get(key, []) if (r.plan, r.n_ctx, r.kv_type) != same]
        self._all[key] = [*kept, record]
        self._save()
        return record

    def _save(self) -> None:
        data = {
            "version": _VERSION,
            "models": {k: [r.to_dict() for r in v] for k, v in sorted(self._all.items()) if v},
        }
        write_json(self._file, data)
