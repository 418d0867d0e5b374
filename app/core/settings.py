"""Settings value objects: how to load a model, how to sample from it, how Herd looks.

Reading is forgiving: a missing, damaged or hand-edited file never stops Herd from
starting. Unknown keys are ignored, a value of the wrong type falls back to its default
and a number out of range is pulled into range (each with a log line).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.core.errors import HerdError
from app.core.settings_json import coerce, default_of, from_jsonable, to_jsonable

logger = logging.getLogger(__name__)

DEFAULT_PRESET_ID = "none"  # no system prompt, as Meta's reference (app.core.chat.presets)
SETTINGS_VERSION = 2  # of the settings file; older files are brought up to it by _migrated
FONT_SIZE_MIN = 8  # points; 0 means the platform's default size
FONT_SIZE_MAX = 32
SERVER_HOST = "127.0.0.1"  # the window's local server listens only on this machine by default
SERVER_PORT = 8080


class SettingsError(HerdError, ValueError):
    """A setting outside the range Herd accepts."""


class KVType(StrEnum):
    """KV-cache element types llama.cpp supports for Llama 4 (quantized ones need flash attn)."""

    F16 = "f16"
    Q8_0 = "q8_0"
    Q4_0 = "q4_0"


class TemplateChoice(StrEnum):
    """Which renderer formats a Llama 4 chat when the GGUF's own template differs."""

    HERD = "herd"  # Herd's renderer of Meta's documented format (the default)
    MODEL = "model"  # the GGUF's own tokenizer.chat_template


class Theme(StrEnum):
    """The colour scheme; a ``str`` so it compares equal to, and saves as, its value."""

    SYSTEM = "system"  # follow the operating system, also when it changes
    LIGHT = "light"
    DARK = "dark"


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
    tensor_split: tuple[float, ...] = ()  # layers per GPU, in llama.cpp's device order
    rpc_servers: tuple[str, ...] = ()  # herd workers first: HOST:PORT (all) or HOST:PORT#N

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadSettings:
        """Inverse of to_dict; unknown keys are ignored, unusable values give the default."""
        return from_jsonable(cls, data)


@dataclass(frozen=True, slots=True)
class FieldRange:
    """The accepted range of one numeric setting, and what it means in plain words."""

    minimum: float
    maximum: float
    label: str
    help: str


# The single source of each sampling field's range; the settings dialog is built from it.
SAMPLING_RANGES: dict[str, FieldRange] = {
    "temperature": FieldRange(
        0.0,
        2.0,
        "Temperature",
        "How adventurous the wording is. Low values give focused, predictable answers; "
        "high values give more varied, creative ones. 0 always picks the likeliest word.",
    ),
    "top_p": FieldRange(
        0.0,
        1.0,
        "Top-p",
        "Only consider the most likely words that together make up this share of the "
        "probability. 1 turns the filter off; lower values keep replies on track.",
    ),
    "top_k": FieldRange(
        0,
        200,
        "Top-k",
        "Only consider this many of the most likely next words. 0 turns the filter off "
        "(the default: Meta's Llama 4 sampler uses only temperature and top-p).",
    ),
    "min_p": FieldRange(
        0.0,
        1.0,
        "Min-p",
        "Drop words that are much less likely than the best one: a word needs at least this "
        "fraction of the top word's probability. 0 turns the filter off (the default).",
    ),
    "repeat_penalty": FieldRange(
        1.0,
        2.0,
        "Repeat penalty",
        "Discourage repeating recent words. 1 means no penalty; Llama 4 rarely needs more "
        "than 1.1.",
    ),
    "max_tokens": FieldRange(
        1,
        32768,
        "Max reply length",
        "The longest reply, in tokens (about three quarters of a word each). The reply "
        "stops here even mid-sentence.",
    ),
    "seed": FieldRange(
        -1,
        2**31 - 1,
        "Seed",
        "The starting point of the random choices. The same seed, prompt and settings give "
        "the same reply again; -1 picks a new random seed each time.",
    ),
}


@dataclass(frozen=True, slots=True)
class SamplingSettings:
    """How tokens are drawn. Defaults are Meta's Llama 4 sampler: temperature 0.6, top-p 0.9.

    Attributes:
        temperature: 0 to 2; 0 is greedy (always the likeliest token).
        top_p: 0 to 1; 1 turns nucleus sampling off.
        top_k: 0 to 200; 0 turns top-k off.
        min_p: 0 to 1; 0 turns min-p off.
        repeat_penalty: 1 to 2; 1 is no penalty.
        max_tokens: 1 to 32768 tokens per reply.
        seed: -1 for a new random seed each time, else 0 to 2**31 - 1.
    """

    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int = 0  # off, and min-p too: Meta's reference applies neither
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    max_tokens: int = 2048
    seed: int = -1  # -1: a new random seed each time

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingSettings:
        """Inverse of to_dict; unknown keys are ignored, unusable values give the default.

        Ranges are not enforced here (the engine takes what it is sent); see :meth:`clamped`.
        """
        return from_jsonable(cls, data)

    def problems(self) -> list[str]:
        """One plain sentence per field outside its range; empty when all are fine."""
        out = []
        for name, spec in SAMPLING_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, float) and math.isnan(value):
                out.append(f"{spec.label} is not a number.")
            elif not spec.minimum <= value <= spec.maximum:
                out.append(
                    f"{spec.label} is {value:g}; it must be between "
                    f"{spec.minimum:g} and {spec.maximum:g}."
                )
        return out

    def validate(self) -> SamplingSettings:
        """Return self when every field is in range.

        Raises:
            SettingsError: naming each field that is out of range.
        """
        problems = self.problems()
        if problems:
            raise SettingsError(" ".join(problems), "Reset the sampling settings to defaults.")
        return self

    def clamped(self) -> SamplingSettings:
        """A copy with every field pulled into its range (NaN gives the default)."""
        changes: dict[str, Any] = {}
        for name, spec in SAMPLING_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, float) and math.isnan(value):
                fixed: float = default_of(SamplingSettings, name)
            else:
                fixed = min(max(value, spec.minimum), spec.maximum)
            if fixed != value:
                is_int = isinstance(default_of(SamplingSettings, name), int)
                changes[name] = int(fixed) if is_int else float(fixed)
        return dataclasses.replace(self, **changes) if changes else self


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the person chose, saved between runs."""

    load: LoadSettings = field(default_factory=LoadSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    last_model: str = ""
    theme: Theme = Theme.SYSTEM
    font_size: int = 0  # 0: the platform's default; else FONT_SIZE_MIN to FONT_SIZE_MAX points
    default_preset_id: str = DEFAULT_PRESET_ID  # system prompt preset for new chats
    # The window's local OpenAI-compatible server (off until switched on in Settings).
    server_enabled: bool = False
    server_host: str = SERVER_HOST
    server_port: int = SERVER_PORT  # 0: a free port, chosen at each start
    server_api_key: str = field(default="", repr=False)  # never in a log line

    def __post_init__(self) -> None:
        # Callers that still pass a plain string ("dark") get the enum.
        if not isinstance(self.theme, Theme):
            object.__setattr__(self, "theme", _theme_or_default(self.theme))

    @classmethod
    def from_dict(cls, data: Any) -> Settings:
        """Settings from parsed JSON; anything unusable gives that field's default."""
        if not isinstance(data, dict):
            logger.warning("ignoring settings that are not a JSON object: %r", type(data))
            return cls()
        data = _migrated(data)
        load, sampling = data.get("load", {}), data.get("sampling", {})
        return cls(
            load=LoadSettings.from_dict(load if isinstance(load, dict) else {}),
            sampling=_clamped(
                SamplingSettings.from_dict(sampling if isinstance(sampling, dict) else {})
            ),
            last_model=coerce(data, "last_model", ""),
            theme=_theme_or_default(data.get("theme", Theme.SYSTEM)),
            font_size=clamp_font_size(coerce(data, "font_size", 0)),
            default_preset_id=coerce(data, "default_preset_id", DEFAULT_PRESET_ID)
            or DEFAULT_PRESET_ID,
            server_enabled=coerce(data, "server_enabled", False),
            server_host=coerce(data, "server_host", SERVER_HOST).strip() or SERVER_HOST,
            server_port=_port_or_default(coerce(data, "server_port", SERVER_PORT)),
            server_api_key=_key_or_none(data.get("server_api_key")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "version": SETTINGS_VERSION,
            "load": self.load.to_dict(),
            "sampling": self.sampling.to_dict(),
            "last_model": self.last_model,
            "theme": self.theme.value,
            "font_size": self.font_size,
            "default_preset_id": self.default_preset_id,
            "server_enabled": self.server_enabled,
            "server_host": self.server_host,
            "server_port": self.server_port,
            "server_api_key": self.server_api_key,
        }

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
        return cls.from_dict(data)

    def save_to(self, path: Path) -> None:
        """Write settings atomically: a flushed temporary file, then a rename.

        Raises:
            OSError: it could not be written (a full disk); the old file is left as it was.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            # Owner-only: the file holds the local server's API key.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(self.to_dict(), indent=2))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def _migrated(data: dict[str, Any]) -> dict[str, Any]:
    """Settings read from an older file, brought up to :data:`SETTINGS_VERSION` (a copy).

    Version 1 (no "version" key) stored every field, so its defaults cannot be told from
    choices: where it holds exactly a default that changed, that is taken as the default
    and moves to the new one. Top-k 40 with min-p 0.05 becomes both off; the "helpful"
    preset for new chats becomes no system prompt. Any other value is kept as it was.
    """
    if coerce(data, "version", 1) >= SETTINGS_VERSION:
        return data
    data = dict(data)
    sampling = data.get("sampling")
    if isinstance(sampling, dict) and (sampling.get("top_k"), sampling.get("min_p")) == (40, 0.05):
        data["sampling"] = {**sampling, "top_k": 0, "min_p": 0.0}
        logger.info("settings: the old default top-k 40, min-p 0.05 is now off")
    if data.get("default_preset_id") == "helpful":
        data["default_preset_id"] = DEFAULT_PRESET_ID
        logger.info("settings: new chats now start without a system prompt")
    return data


def _clamped(sampling: SamplingSettings) -> SamplingSettings:
    clamped = sampling.clamped()
    if clamped != sampling:
        logger.warning("sampling settings out of range were clamped: %s", clamped)
    return clamped


def clamp_font_size(size: int) -> int:
    """0 (the platform's size) stays 0; anything else is pulled into the accepted range."""
    if size <= 0:
        return 0
    return min(max(size, FONT_SIZE_MIN), FONT_SIZE_MAX)


def _key_or_none(key: Any) -> str:
    return key.strip() if isinstance(key, str) else ""  # no log line: it is a secret


def _port_or_default(port: int) -> int:
    if 0 <= port <= 65535:
        return port
    logger.warning("server port %s is not a port; using %s", port, SERVER_PORT)
    return SERVER_PORT


def _theme_or_default(value: Any) -> Theme:
    try:
        return Theme(str(value).lower())
    except ValueError:
        logger.warning("unknown theme %r; following the system", value)
        return Theme.SYSTEM
