"""What llama.cpp will write for a recipe: each tensor's type and bytes, from the header.

This follows ``src/llama-quant.cpp`` (llama-cpp-python 0.3.36) step by step, so the size
is known before anything is written: tensors llama.cpp never quantizes (1-D, norms, the
router) keep their type; ``token_embd`` and ``output`` take the recipe's types; other
tensors take the first rule that matches (``tt_overrides``), else the file type's own mix
(Q4_K_M's is reproduced: more bits for ``attn_v`` and ``ffn_down`` on the first and last
eighth of the layers and every third between); a type whose block does not divide the row
length falls back as llama.cpp's ``tensor_type_fallback`` does.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from app.core.gguf.info import GGUFInfo, TensorInfo
from app.core.gguf.types import TensorGroup, tensor_group
from quantize.recipe import Recipe, ftype_id, type_id

Q = GGMLQuantizationType

# llama_ftype_get_default_type, for the file types a recipe may name
_FTYPE_DEFAULT = {
    "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1", "Q8_0": "Q8_0",
    "Q2_K": "Q2_K", "Q2_K_S": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K",
    "IQ2_XXS": "IQ2_XXS", "IQ2_XS": "IQ2_XS", "IQ2_S": "IQ2_XS", "IQ2_M": "IQ2_S",
    "IQ3_XXS": "IQ3_XXS", "IQ1_S": "IQ1_S", "IQ1_M": "IQ1_M", "IQ4_NL": "IQ4_NL",
    "IQ4_XS": "IQ4_XS", "IQ3_XS": "IQ3_S", "IQ3_S": "IQ3_S", "IQ3_M": "IQ3_S",
}  # fmt: skip
_VERY_LOW = {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M", "IQ3_XXS"}
# tensor_type_fallback: a 256-block type on a row it does not divide
_FALLBACK = {
    **dict.fromkeys(("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S",
                     "IQ4_XS"), "IQ4_NL"),
    **dict.fromkeys(("Q2_K", "Q3_K", "TQ1_0", "TQ2_0"), "Q4_0"),
    "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
}  # fmt: skip
_OTHER = "(file type's mix)"
_QV_KEY_BYTES = 8 + len("general.quantization_version") + 4 + 4
_SPLIT_KEYS = ("split.no", "split.count", "split.tensors.count")


class UnpredictableError(ValueError):
    """A recipe whose result this module cannot know beforehand."""


@dataclass(frozen=True, slots=True)
class TensorChoice:
    """One tensor: its type in the source and the type llama.cpp will write."""

    name: str
    group: TensorGroup
    src_type: str
    type: str
    shape: tuple[int, ...]
    n_bytes: int
    pattern: str  # the rule that chose it: a pattern, "token_embd", "output", "kept", _OTHER


@dataclass(frozen=True, slots=True)
class Prediction:
    """The file a recipe will write from one source."""

    recipe: Recipe
    source: GGUFInfo
    tensors: tuple[TensorChoice, ...]
    header_bytes: int

    @property
    def data_bytes(self) -> int:
        """Tensor data, alignment padding included."""
        a = self.source.alignment or 32
        return sum(-(-t.n_bytes // a) * a for t in self.tensors)

    @property
    def file_bytes(self) -> int:
        """The predicted size of the output file (all parts)."""
        return self.header_bytes + self.data_bytes

    def types(self) -> dict[str, str]:
        """Tensor name -> type written."""
        return {t.name: t.type for t in self.tensors}

    def by_pattern(self) -> dict[str, dict[str, Any]]:
        """Pattern -> {"types": {type: tensors}, "tensors": n, "bytes": n}, in rule order."""
        order = [r.pattern for r in self.recipe.rules] + ["token_embd", "output", _OTHER, "kept"]
        out: dict[str, dict[str, Any]] = {}
        for key in order:
            chosen = [t for t in self.tensors if t.pattern == key]
            if not chosen:
                continue
            types: dict[str, int] = {}
            for t in chosen:
                types[t.type] = types.get(t.type, 0) + 1
            out[key] = {
                "types": types,
                "tensors": len(chosen),
                "bytes": sum(t.n_bytes for t in chosen),
            }
        return out

    def as_info(self) -> GGUFInfo:
        """The predicted output's header, for the planner."""
        a = self.source.alignment or 32
        offset = 0
        tensors = []
        for t in self.tensors:
            n = 1
            for d in t.shape:
                n *= d
            tensors.append(
                TensorInfo(t.name, type_id(t.type), t.type, t.shape, n, t.n_bytes, offset, 0)
            )
            offset += -(-t.n_bytes // a) * a
        metadata = dict(self.source.metadata)
        metadata["general.file_type"] = ftype_id(self.recipe.ftype)
        for key in _SPLIT_KEYS:
            metadata.pop(key, None)
        name = f"{self.source.name} ({self.recipe.name})"
        return dataclasses.replace(
            self.source,
            path=self.source.path.with_name(f"{self.recipe.name}.gguf"),
            parts=(self.source.path.with_name(f"{self.recipe.name}.gguf"),),
            metadata=metadata | {"general.name": name},
            tensors=tuple(tensors),
            file_size=self.file_bytes,
            data_offsets=(self.header_bytes,),
        )


def _more_bits(i: int, n: int) -> bool:
    """llama.cpp's ``use_more_bits``."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _quantizable(t: TensorInfo) -> bool:
    """llama.cpp's ``tensor_allows_quantization`` for a Llama 4 text model."""
    n_dims = len(t.shape)
    while n_dims > 1 and t.shape[n_dims - 1] == 1:
        n_dims -= 1
    name = t.name
    return (
        n_dims >= 2
        and name.endswith("weight")
        and "_norm.weight" not in name
        and "ffn_gate_inp.weight" not in name
    )


def _fallback(qtype: str, ncols: int) -> str:
    block = GGML_QUANT_SIZES[GGMLQuantizationType[qtype]][0]
    if ncols % block == 0:
        return qtype
    out = _FALLBACK.get(qtype, qtype)
    return out if ncols % GGML_QUANT_SIZES[GGMLQuantizationType[out]][0] == 0 else "F16"


def _mix(ftype: str, stem: str, layer: int, n_layer: int, default: str) -> str:
    """The file type's own choice for a tensor no rule names (Q4_K_M's reproduced)."""
    if ftype == "Q4_K_M" and (stem == "attn_v" or stem.startswith("ffn_down")):
        return "Q6_K" if _more_bits(layer, n_layer) else default
    if ftype in ("Q4_K_M", "Q8_0", "Q6_K"):
        return default
    raise UnpredictableError(f"{stem} under {ftype} is not covered by a rule")


def _choose(t: TensorInfo, recipe: Recipe, rules: list[tuple[re.Pattern[str], str, str]],
            n_layer: int) -> tuple[str, str]:  # fmt: skip
    """(type, which rule) for one tensor."""
    if not _quantizable(t):
        return t.type_name, "kept"
    ftype = recipe.ftype
    default = _FTYPE_DEFAULT[ftype]
    ncols = t.shape[0]
    if t.name == "token_embd.weight":
        if recipe.token_embd:
            return recipe.token_embd, "token_embd"
        return _fallback("Q2_K" if ftype in _VERY_LOW else default, ncols), "token_embd"
    if t.name == "output.weight":
        if recipe.output:
            return recipe.output, "output"
        if ncols % GGML_QUANT_SIZES[GGMLQuantizationType[default]][0]:
            return "Q8_0", "output"
        chosen = "Q5_K" if ftype in _VERY_LOW else "Q6_K" if default != "Q8_0" else default
        return _fallback(chosen, ncols), "output"
    for regex, qtype, pattern in rules:
        if regex.search(t.name):
            return _fallback(qtype, ncols), pattern
    stem = t.name.split(".")[2] if t.layer is not None else t.name
    return _fallback(_mix(ftype, stem, t.layer or 0, n_layer, default), ncols), _OTHER


def _n_bytes(shape: tuple[int, ...], qtype: str) -> int:
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[qtype]]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


def _ti_bytes(t: TensorInfo) -> int:
    """A tensor's entry in the header: name, dims, type, offset."""
    return 8 + len(t.name.encode()) + 4 + 8 * len(t.shape) + 4 + 8


def predict(info: GGUFInfo, recipe: Recipe) -> Prediction:
    """Each tensor's type and bytes, and the file's size, for ``recipe`` on ``info``.

    Raises:
        UnpredictableError: a tensor no rule names, under a file type whose own mix is
            not reproduced here.
    """
    rules = [(re.compile(r.regex), r.type, r.pattern) for r in recipe.rules]
    choices = []
    for t in info.tensors:
        qtype, pattern = _choose(t, recipe, rules, info.n_layers)
        choices.append(
            TensorChoice(
                t.name, t.group, t.type_name, qtype, t.shape, _n_bytes(t.shape, qtype), pattern
            )
        )
    part0 = [t for t in info.tensors if t.part_index == 0]
    meta = info.data_offsets[0] - sum(map(_ti_bytes, part0)) + sum(map(_ti_bytes, info.tensors))
    if "general.quantization_version" not in info.metadata:
        meta += _QV_KEY_BYTES
    meta -= sum(8 + len(k) + 4 + 4 for k in _SPLIT_KEYS if k in info.metadata)
    a = info.alignment or 32
    return Prediction(recipe, info, tuple(choices), -(-meta // a) * a)


def group_bytes(prediction: Prediction) -> dict[TensorGroup, int]:
    """Predicted bytes per tensor group (routed experts, attention, ...)."""
    out = dict.fromkeys(TensorGroup, 0)
    for t in prediction.tensors:
        out[tensor_group(t.name)] += t.n_bytes
    return out
