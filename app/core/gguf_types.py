"""The value objects of a GGUF's tensor inventory, and what each tensor is for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from gguf import GGUFValueType

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

