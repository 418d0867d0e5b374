"""Settings value objects: how to load a model and how to sample from it."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class KVType(StrEnum):
    """KV-cache element types llama.cpp supports for Llama 4 (quantized ones need flash attn)."""

    F16 = "f16"
    Q8_0 = "q8_0"
    Q4_0 = "q4_0"


class TemplateChoice(StrEnum):
    """Which renderer formats a Llama 4 chat when the GGUF's own template differs."""

    HERD = "herd"  # Herd's renderer of Meta's documented format (the default)
    MODEL = "model"  # the GGUF's own tokenizer.chat_template


def default_threads() -> int:
    """Physical cores are what decode speed scales with; leave one for the UI on big CPUs."""
    n = os.cpu_count() or 2
    return max(1, n - 1) if n > 4 else n


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """How the engine loads a model."""

    n_ctx: int = 8192
    n_threads: int = field(default_factory=default_threads)
    n_gpu_layers: int = -1
    n_batch: int = 512
    n_ubatch: int = 512
    flash_attn: bool = False
    type_k: KVType = KVType.F16
    type_v: KVType = KVType.F16
    # Llama 4's chunked-attention layers need only a small KV cache when this is False;
    # llama-cpp-python leaves libllama's default (True), which costs Scout 4x the KV memory.
    swa_full: bool = False
    use_mmap: bool = True
    use_mlock: bool = False
    template: TemplateChoice = TemplateChoice.HERD
    tensor_overrides: tuple[tuple[str, str], ...] = ()  # (regex, buffer type name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return _to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadSettings:
        """Inverse of to_dict; unknown keys are ignored."""
        return _from_jsonable(cls, data)


@dataclass(frozen=True, slots=True)
class SamplingSettings:
    """How tokens are drawn. Defaults follow Meta's Llama 4 generation config."""

    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    max_tokens: int = 2048
    seed: int = -1  # -1: a new random seed each time

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return _to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingSettings:
        """Inverse of to_dict; unknown keys are ignored."""
        return _from_jsonable(cls, data)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the person chose, saved between runs."""

    load: LoadSettings = field(default_factory=LoadSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    last_model: str = ""
    theme: str = "system"
    font_size: int = 0  # 0: the platform's default

    @classmethod
    def load_from(cls, path: Path) -> Settings:
        """Read settings; a missing or damaged file gives the defaults (and a log line)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable settings file %s: %s", path, exc)
            return cls()
        return cls(
            load=LoadSettings.from_dict(data.get("load", {})),
            sampling=SamplingSettings.from_dict(data.get("sampling", {})),
            last_model=str(data.get("last_model", "")),
            theme=str(data.get("theme", "system")),
            font_size=int(data.get("font_size", 0)),
        )

    def save_to(self, path: Path) -> None:
        """Write settings atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        data = {
            "load": self.load.to_dict(),
            "sampling": self.sampling.to_dict(),
            "last_model": self.last_model,
            "theme": self.theme,
            "font_size": self.font_size,
        }
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, path)


def _to_jsonable(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[f.name] = value
    return out


def _from_jsonable(cls: type, data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, Enum):
            value = type(default)(value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[f.name] = value
    return cls(**kwargs)
