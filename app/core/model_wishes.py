"""What the person asked for one model file: context, KV type, pinned layers, projector.

Wishes belong to a model, not to the app: a context chosen for Scout must not reach the
next file, whose layers and trained context differ. They are kept per file (by absolute
path) in ``models.json`` in the config folder; a model never configured has none, and
the plan decides everything for it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.json_file import read_json, write_json
from app.core.plan.search import Wishes
from app.core.settings import KVType

logger = logging.getLogger(__name__)

WISHES_FILE = "models.json"


@dataclass(frozen=True, slots=True)
class ModelWishes:
    """One model's wishes; None leaves the choice to the planner."""

    n_ctx: int | None = None  # None: the largest that fits, up to the planner's cap
    kv_type: KVType = KVType.F16
    gpu_expert_layers: int | None = None  # MoE layers whose experts stay on the GPU
    flash_attn: bool | None = None  # None: the plan's choice (on)
    allow_disk: bool = False  # read weights beyond RAM from disk (slow)
    projector: str = ""  # the vision projector chosen for it; "": the mmproj beside it

    def planner_wishes(self) -> Wishes:
        """The planner's view of these wishes."""
        return Wishes(
            n_ctx=self.n_ctx,
            kv_type=self.kv_type,
            flash_attn=self.flash_attn,
            gpu_expert_layers=self.gpu_expert_layers,
            allow_disk=self.allow_disk,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (only what differs from the defaults)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = value.value if isinstance(value, KVType) else value
        return out

    @classmethod
    def from_dict(cls, data: Any) -> ModelWishes:
        """Inverse of to_dict; anything unusable gives that field's default."""
        if not isinstance(data, dict):
            return cls()
        out = cls()
        for name in ("n_ctx", "gpu_expert_layers"):
            value = data.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                counts: dict[str, Any] = {name: value}  # n_ctx or gpu_expert_layers: an int
                out = dataclasses.replace(out, **counts)
        if isinstance(data.get("flash_attn"), bool):
            out = dataclasses.replace(out, flash_attn=data["flash_attn"])
        if isinstance(data.get("allow_disk"), bool):
            out = dataclasses.replace(out, allow_disk=data["allow_disk"])
        if isinstance(data.get("projector"), str):
            out = dataclasses.replace(out, projector=data["projector"])
        try:
            out = dataclasses.replace(out, kv_type=KVType(data.get("kv_type", "f16")))
        except ValueError:
            logger.warning("ignoring unknown KV type %r", data.get("kv_type"))
        return out


def _key(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


class WishStore:
    """Every model's wishes, in one JSON file, saved atomically on each change."""

    def __init__(self, file: Path) -> None:
        self._file = file
        self._all: dict[str, ModelWishes] = {}
        data = read_json(file, "model wishes")
        if isinstance(data, dict):
            self._all = {str(k): ModelWishes.from_dict(v) for k, v in data.items()}

    def get(self, path: str | Path) -> ModelWishes:
        """This model's wishes (none yet: the defaults, so the plan decides)."""
        return self._all.get(_key(path), ModelWishes())

    def set(self, path: str | Path, wishes: ModelWishes) -> None:
        """Keep ``wishes`` for this model (an unchanged default entry is dropped).

        Raises:
            OSError: the file could not be written (the old one is left as it was).
        """
        key = _key(path)
        if wishes == ModelWishes():
            self._all.pop(key, None)
        else:
            self._all[key] = wishes
        write_json(self._file, {k: w.to_dict() for k, w in sorted(self._all.items())})
