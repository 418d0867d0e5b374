"""The types in a GGUF header: tensors, what each is for, and what numeric keys must hold.

:func:`check_metadata` refuses a file whose metadata holds a string, float, boolean or
array where Herd or llama.cpp reads a count, before either reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from gguf import GGUFValueType

from app.core.errors import ModelFileError

_BLOCK_RE = re.compile(r"^blk\.(\d+)\.([^.]+)")


class TensorGroup(StrEnum):
    """What a tensor is for; the planner places groups (experts on CPU, the rest on GPU)."""

    ROUTED_EXPERTS = "routed_experts"
    SHARED_EXPERT = "shared_expert"
    ATTENTION = "attention"
    DENSE_FFN = "dense_ffn"
    EMBEDDINGS = "embeddings"
    NORMS_ROUTER = "norms_router"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ArraySummary:
    """A metadata array that was skipped, not kept (a 200k-entry vocabulary, say)."""

    item_type: GGUFValueType
    length: int

    def __len__(self) -> int:
        return self.length


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor's entry in the inventory; ``shape`` is in ggml order (row length first)."""

    name: str
    ggml_type: int
    type_name: str
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int
    offset: int  # from the start of its part's data section, as stored in the file
    part_index: int

    @property
    def layer(self) -> int | None:
        """The block index of a ``blk.N.*`` tensor, else None."""
        m = _BLOCK_RE.match(self.name)
        return int(m.group(1)) if m else None

    @property
    def group(self) -> TensorGroup:
        """What this tensor is for."""
        return tensor_group(self.name)


def tensor_group(name: str) -> TensorGroup:
    """Classify a tensor by its llama.cpp name (``blk.3.ffn_up_exps.weight`` -> routed)."""
    m = _BLOCK_RE.match(name)
    stem = m.group(2) if m else name.split(".", 1)[0]
    if stem.startswith("ffn_gate_inp") or stem == "exp_probs_b" or "norm" in stem:
        return TensorGroup.NORMS_ROUTER
    if stem.endswith("_exps"):
        return TensorGroup.ROUTED_EXPERTS
    if stem.endswith("_shexp"):
        return TensorGroup.SHARED_EXPERT
    if stem.startswith("attn_"):
        return TensorGroup.ATTENTION
    if stem.startswith("ffn_"):
        return TensorGroup.DENSE_FFN
    if not m and (stem == "output" or "embd" in stem):
        return TensorGroup.EMBEDDINGS
    return TensorGroup.OTHER


MAX_LAYERS = 512  # LLAMA_MAX_LAYERS: llama.cpp refuses a model with more blocks

_INT = "an integer"
_PER_LAYER = "an integer or an array of integers (one per layer)"
_NUMBER = "a number"
_STRING = "a string"
_ARCH_KEYS = {
    "block_count": _INT, "context_length": _INT, "embedding_length": _INT,
    "vocab_size": _INT, "feed_forward_length": _PER_LAYER,
    "expert_feed_forward_length": _INT, "expert_count": _INT, "expert_used_count": _INT,
    "expert_shared_count": _INT, "interleave_moe_layer_step": _INT,
    "attention.head_count": _PER_LAYER, "attention.head_count_kv": _PER_LAYER,
    "attention.key_length": _INT, "attention.value_length": _INT,
    "attention.sliding_window": _INT, "attention.layer_norm_rms_epsilon": _NUMBER,
    "attention.layer_norm_epsilon": _NUMBER, "rope.dimension_count": _INT,
    "rope.freq_base": _NUMBER, "rope.scaling.factor": _NUMBER,
}  # fmt: skip
"""``{arch}.*`` keys that Herd's planner or llama.cpp's loader read as numbers."""
_ITEMS = {GGUFValueType.STRING: "strings", GGUFValueType.BOOL: "booleans"} | {
    t: "floats" for t in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64)
}
_BAD_HINT = "The file is damaged or was written by a faulty converter; get the model again."


class BadMetadataError(ModelFileError):
    """A GGUF whose metadata holds a value of the wrong type or size where a number goes."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _items(value: Any) -> str:
    """The plural name of ``value``'s type: ``integers``, ``strings``..."""
    if isinstance(value, ArraySummary):
        return _ITEMS.get(value.item_type, "integers")
    for kind, name in ((bool, "booleans"), (int, "integers"), (float, "floats"), (str, "strings")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(float(f"{value:.7g}"))  # a float32 as written, not 9.999999747e-06
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    return str(value)


def _kind(value: Any) -> str:
    """What a metadata value is, for a message: ``a string ('five')``."""
    if isinstance(value, ArraySummary):
        return f"an array of {value.length} {_items(value)}"
    if isinstance(value, tuple):
        if not value:
            return "an empty array"
        items = _items(value[0]) if len(value) > 1 else _items(value[0])[:-1]
        shown = f" ({', '.join(_shown(v) for v in value)})" if len(value) <= 8 else ""
        return f"an array of {len(value)} {items}{shown}"
    name = _items(value)[:-1]
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} ({_shown(value)})"


def _is_strings(value: Any) -> bool:
    if isinstance(value, ArraySummary):
        return value.item_type == GGUFValueType.STRING
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


def check_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Check every metadata value Herd or llama.cpp reads as a number, before either does.

    A string, float, boolean or array where an integer goes would otherwise be a Python
    traceback in Herd, or an abort in llama.cpp (a float array where it wants integers).

    Raises:
        BadMetadataError: naming the key, what it should hold and what it holds.
    """
    arch = metadata.get("general.architecture", "")
    wanted = {"general.architecture": _STRING, "split.count": _INT}
    if isinstance(arch, str):
        wanted |= {f"{arch}.{suffix}": want for suffix, want in _ARCH_KEYS.items()}
    for key, want in wanted.items():
        value = metadata.get(key)
        if value is None:
            continue
        if want == _STRING:
            ok = isinstance(value, str)
        elif want == _NUMBER:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            many = want == _PER_LAYER and isinstance(value, tuple) and bool(value)
            values = value if many else (value,)
            ok = all(_is_int(v) and v >= 0 for v in values)
            if not ok and all(_is_int(v) for v in values):
                want = "0 or more"  # a negative count
        if not ok:
            raise BadMetadataError(
                f"{path.name}: {key} should be {want} but is {_kind(value)}", _BAD_HINT
            )
    _check_sizes(path, metadata, arch)


def _check_sizes(path: Path, metadata: dict[str, Any], arch: str) -> None:
    tokens = metadata.get("tokenizer.ggml.tokens")
    if tokens is not None and not _is_strings(tokens):
        raise BadMetadataError(
            f"{path.name}: tokenizer.ggml.tokens should be an array of strings but is "
            f"{_kind(tokens)}",
            _BAD_HINT,
        )
    n_layers = metadata.get(f"{arch}.block_count", 0)
    if n_layers > MAX_LAYERS:
        raise BadMetadataError(
            f"{path.name}: {arch}.block_count is {n_layers}, more than the {MAX_LAYERS} "
            "layers llama.cpp can load",
            _BAD_HINT,
        )
    for suffix, want in _ARCH_KEYS.items():
        value = metadata.get(f"{arch}.{suffix}")
        if want == _PER_LAYER and isinstance(value, tuple) and n_layers and len(value) != n_layers:
            raise BadMetadataError(
                f"{path.name}: {arch}.{suffix} has {len(value)} values, but the model has "
                f"{n_layers} layers (one value per layer)",
                _BAD_HINT,
            )
