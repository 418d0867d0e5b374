"""Read a GGUF model's header, metadata and tensor inventory without touching the weights.

Only the header is read (a few MB even for a 60 GB Llama 4 file; the parser is in
:mod:`app.core.gguf.reader`, the tensor value objects in :mod:`app.core.gguf.types`).
Every check llama.cpp makes when it opens a file is made here first, so a truncated or
corrupt download becomes a :class:`ModelFileError` with a plain message instead of a
crash in the engine. Split models (``*-00001-of-00003.gguf``) read as one model.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import LlamaFileType

from app.core.errors import UnsupportedModelError
from app.core.gguf.reader import SPLIT_RE, check_split, read_part, split_parts
from app.core.gguf.types import (
    ArraySummary,
    BadMetadataError,
    TensorGroup,
    TensorInfo,
    check_metadata,
    tensor_group,
)

__all__ = [
    "SUPPORTED_ARCHITECTURES", "ArraySummary", "BadMetadataError", "GGUFInfo", "TensorGroup",
    "TensorInfo", "check_metadata", "describe", "find_projector", "read_gguf",
    "require_supported", "split_parts", "tensor_group",
]  # fmt: skip

logger = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = frozenset(
    {"llama4", "llama", "gemma3", "gemma2", "gemma", "qwen2", "qwen3", "phi3"}
)
"""Architectures Herd chats with and llama.cpp 0.3.36 is known to run."""


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    """Everything Herd knows about a model file before loading it."""

    path: Path  # the first part
    parts: tuple[Path, ...]
    version: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    file_size: int  # summed over parts
    data_offsets: tuple[int, ...]  # per part: where the tensor data starts
    alignment: int

    def _get(self, suffix: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.arch}.{suffix}", default)

    @property
    def arch(self) -> str:
        """``general.architecture``, e.g. ``llama4``."""
        return str(self.metadata.get("general.architecture", ""))

    @property
    def is_llama4(self) -> bool:
        """Whether this is a Llama 4 (Scout, Maverick) text model."""
        return self.arch == "llama4"

    @property
    def name(self) -> str:
        """``general.name``, else the file name."""
        return str(self.metadata.get("general.name") or SPLIT_RE.sub("", self.path.stem))

    @property
    def n_layers(self) -> int:
        """Transformer blocks (``{arch}.block_count``)."""
        return int(self._get("block_count", 0))

    @property
    def context_length(self) -> int:
        """The context length the model was trained for."""
        return int(self._get("context_length", 0))

    @property
    def n_embd(self) -> int:
        """Hidden size."""
        return int(self._get("embedding_length", 0))

    @property
    def n_experts(self) -> int:
        """Routed experts per MoE layer; 0 for a dense model."""
        return int(self._get("expert_count", 0))

    @property
    def n_experts_used(self) -> int:
        """Routed experts each token goes through."""
        return int(self._get("expert_used_count", 0))

    @property
    def has_shared_expert(self) -> bool:
        """Whether any layer has a shared expert (``blk.N.ffn_*_shexp``)."""
        return any(t.group is TensorGroup.SHARED_EXPERT for t in self.tensors)

    @property
    def n_shared_experts(self) -> int:
        """``{arch}.expert_shared_count``, else 1 with shared-expert tensors, else 0."""
        return int(self._get("expert_shared_count", 0)) or int(self.has_shared_expert)

    @property
    def interleave_moe_layer_step(self) -> int:
        """Llama 4: every how many layers is MoE (Scout 1, Maverick 2); 0 if unset."""
        return int(self._get("interleave_moe_layer_step", 0))

    @property
    def moe_layers(self) -> tuple[int, ...]:
        """Layer indices that hold routed experts."""
        layers = {t.layer for t in self.tensors if t.group is TensorGroup.ROUTED_EXPERTS}
        return tuple(sorted(i for i in layers if i is not None))

    @property
    def chat_template(self) -> str | None:
        """The Jinja chat template stored in the file, if any."""
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def param_count(self) -> int:
        """Parameters (elements) over all tensors."""
        return sum(t.n_elements for t in self.tensors)

    @property
    def n_bytes(self) -> int:
        """Bytes of tensor data over all tensors."""
        return sum(t.n_bytes for t in self.tensors)

    @property
    def quant_mix(self) -> dict[str, tuple[int, int]]:
        """Type name -> (tensors, bytes), most bytes first."""
        mix: dict[str, tuple[int, int]] = {}
        for t in self.tensors:
            n, b = mix.get(t.type_name, (0, 0))
            mix[t.type_name] = (n + 1, b + t.n_bytes)
        return dict(sorted(mix.items(), key=lambda kv: (-kv[1][1], kv[0])))

    @property
    def file_type(self) -> str:
        """llama.cpp's name for ``general.file_type`` (``Q4_K_M``); else the main tensor type."""
        value = self.metadata.get("general.file_type")
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return LlamaFileType(value).name.removeprefix("MOSTLY_").removeprefix("ALL_")
            except ValueError:
                return f"type {value}"
        return next(iter(self.quant_mix), "unknown")

    def bytes_by_group(self) -> dict[TensorGroup, int]:
        """Tensor bytes per :class:`TensorGroup` (every group present, zeros included)."""
        groups = dict.fromkeys(TensorGroup, 0)
        for t in self.tensors:
            groups[t.group] += t.n_bytes
        return groups

    def file_offset(self, tensor: TensorInfo) -> int:
        """Where ``tensor``'s data starts in its part's file."""
        return self.data_offsets[tensor.part_index] + tensor.offset


def read_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Read and validate a model's header, metadata and tensor inventory (all split parts).

    Raises:
        ModelFileError: missing, not a GGUF, truncated or corrupt; a
            :class:`BadMetadataError` when a number in the metadata is not a number.
    """
    start = time.perf_counter()
    parts = split_parts(path)
    read = [read_part(p, i) for i, p in enumerate(parts)]
    check_metadata(parts[0], read[0].metadata)
    check_split(parts, read)
    info = GGUFInfo(
        path=parts[0],
        parts=parts,
        version=read[0].version,
        metadata=read[0].metadata,
        tensors=tuple(t for p in read for t in p.tensors),
        file_size=sum(p.size for p in read),
        data_offsets=tuple(p.data_offset for p in read),
        alignment=read[0].alignment,
    )
    logger.debug("read %s in %.3f s", parts[0].name, time.perf_counter() - start)
    return info


def _model_stem(path: Path) -> str:
    return SPLIT_RE.sub("", path.name).lower().removesuffix(".gguf")


def find_projector(model_path: str | os.PathLike[str]) -> Path | None:
    """The vision projector (``mmproj*.gguf``) next to a model, if there is one.

    Prefers the projector whose name shares the longest prefix with the model's name;
    never returns the model (or one of its parts) itself.
    """
    model = Path(model_path)
    stem = _model_stem(model)
    try:
        entries = list(model.parent.iterdir())
    except OSError:
        return None
    scored = []
    for p in entries:
        low = p.name.lower()
        if not low.endswith(".gguf") or "mmproj" not in low or _model_stem(p) == stem:
            continue  # not a projector, or the model itself (or one of its parts)
        if not p.is_file():
            continue
        other = re.sub(r"mmproj[-_.]?", "", low.removesuffix(".gguf")).strip("-_.")
        common = len(os.path.commonprefix([stem, other]))
        scored.append((-common, p.name, p))
    return min(scored)[2] if scored else None


def describe(info: GGUFInfo) -> dict[str, Any]:
    """A JSON-ready summary of a model, as ``herd info --json`` prints it."""
    projector = find_projector(info.path)
    return {
        "path": str(info.path),
        "architecture": info.arch,
        "name": info.name,
        "parameters": info.param_count,
        "experts": {
            "routed": info.n_experts,
            "shared": info.n_shared_experts,
            "used_per_token": info.n_experts_used,
        },
        "layers": info.n_layers,
        "moe_layers": list(info.moe_layers),
        "quant": info.file_type,
        "quant_mix": {k: {"tensors": n, "bytes": b} for k, (n, b) in info.quant_mix.items()},
        "bytes_by_group": {str(k): v for k, v in info.bytes_by_group().items()},
        "file_size": info.file_size,
        "context_length": info.context_length,
        "chat_template": info.chat_template is not None,
        "projector": str(projector) if projector else None,
        "parts": [str(p) for p in info.parts],
    }


def require_supported(info: GGUFInfo) -> None:
    """Check that Herd can chat with this model on llama.cpp 0.3.36.

    Raises:
        UnsupportedModelError: a projector, an architecture Herd does not run, a file
            without weights, or a Llama 4 too shallow for llama.cpp.
    """
    arch = info.arch
    if arch == "clip" or info.metadata.get("general.type") == "mmproj":
        raise UnsupportedModelError(
            f"{info.path.name} is a vision projector, not a chat model",
            "Open the model file next to it; Herd loads the projector with it.",
        )
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedModelError(
            f"{info.path.name} is a '{arch or 'unknown'}' model, which Herd does not run",
            "Herd runs Llama 4 (Scout, Maverick) and the small demo families: "
            + ", ".join(sorted(SUPPORTED_ARCHITECTURES))
            + ".",
        )
    if not info.tensors:
        raise UnsupportedModelError(
            f"{info.path.name} holds only a vocabulary, no weights", "Open the full model."
        )
    if info.is_llama4 and info.n_layers < 4:
        raise UnsupportedModelError(
            f"{info.path.name} has {info.n_layers} layers and so no global-attention layer; "
            "llama.cpp 0.3.36 aborts on it",
            "Llama 4 models need at least 4 layers (every 4th layer attends globally).",
        )
