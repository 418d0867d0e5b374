"""The variants ``bench/quantize_quality.py`` measures: uniform llama.cpp mixes and recipes.

A variant is a quantizer spec for ``bench/quality_child.py``: a base ``llama_ftype`` and
tensor-type overrides (regex on the tensor name, first match wins), as ``llama-quantize``'s
``--tensor-type`` takes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gguf

FT = gguf.LlamaFileType
T = gguf.GGMLQuantizationType

UNIFORM: tuple[tuple[str, FT], ...] = (
    ("Q2_K", FT.MOSTLY_Q2_K),
    ("Q3_K_M", FT.MOSTLY_Q3_K_M),
    ("Q4_K_M", FT.MOSTLY_Q4_K_M),
    ("Q5_K_M", FT.MOSTLY_Q5_K_M),
    ("Q6_K", FT.MOSTLY_Q6_K),
    ("Q8_0", FT.MOSTLY_Q8_0),
)


@dataclass(frozen=True, slots=True)
class Variant:
    """One way to quantize the source."""

    name: str
    kind: str  # "uniform" or "recipe"
    spec: dict[str, Any] = field(hash=False)
    predicted_mib: float | None = None


def uniform_variants(src: Path) -> list[Variant]:
    """llama.cpp's own mixes, unchanged, each with the size ``quantize.predict`` expects."""
    from app.core.gguf.info import read_gguf
    from quantize.predict import UnpredictableError, predict
    from quantize.recipe import recipe_named

    info = read_gguf(src)
    baseline = recipe_named("q4_k_m")  # no rules: llama.cpp's mix for its ftype
    found = []
    for name, ft in UNIFORM:
        try:
            mib: float | None = predict(info, replace(baseline, ftype=name)).file_bytes / (1 << 20)
        except UnpredictableError:  # the predictor knows only some of llama.cpp's mixes
            mib = None
        found.append(Variant(name, "uniform", {"ftype": int(ft), "overrides": []}, mib))
    return found


def _spec(ftype: FT, overrides: list[tuple[str, T]]) -> dict[str, Any]:
    return {"ftype": int(ftype), "overrides": [[p, int(t)] for p, t in overrides]}


# Everything that is not a routed expert, kept high: it is read for every token.
_HIGH = [
    (r"attn_(q|k|v|output)\.weight", T.Q8_0),
    (r"ffn_(gate|up|down)_shexp\.weight", T.Q8_0),
    (r"token_embd\.weight", T.Q8_0),
    (r"^output\.weight", T.Q8_0),
]


def _moe(name: str, gate_up: T, down: T) -> Variant:
    experts = [(r"ffn_(gate|up)_exps\.weight", gate_up), (r"ffn_down_exps\.weight", down)]
    return Variant(name, "recipe", _spec(FT.MOSTLY_Q8_0, experts + _HIGH))


def _dense(name: str, gate_up: T, down: T) -> Variant:
    ffn = [(r"ffn_(gate|up)\.weight", gate_up), (r"ffn_down\.weight", down)]
    return Variant(name, "recipe", _spec(FT.MOSTLY_Q8_0, ffn + _HIGH))


def bench_recipes(dense: bool) -> list[Variant]:
    """The bench's own recipes: experts (or a dense model's FFN) low, the rest Q8_0."""
    make = _dense if dense else _moe
    prefix = "ffn" if dense else "exp"
    return [
        make(f"{prefix}-q2k+q8", T.Q2_K, T.Q3_K),
        make(f"{prefix}-q3k+q8", T.Q3_K, T.Q4_K),
        make(f"{prefix}-q4k+q8", T.Q4_K, T.Q5_K),
        make(f"{prefix}-q5k+q8", T.Q5_K, T.Q6_K),
    ]


def project_recipes(src: Path) -> list[Variant]:
    """The recipes in ``quantize/recipes.toml`` that fit ``src``'s family and need no imatrix.

    Each carries its predicted size (:func:`quantize.predict.predict`), to set beside the
    real one.
    """
    from app.core.gguf.info import read_gguf
    from quantize.layouts import family_of
    from quantize.predict import predict
    from quantize.recipe import ftype_id, load_recipes, type_id

    info = read_gguf(src)
    family = family_of(info)
    found = []
    for r in load_recipes():
        if r.family != family or r.needs_imatrix:  # "any" is the uniform baseline: measured
            continue
        spec = {
            "ftype": ftype_id(r.ftype),
            "overrides": [list(rule) for rule in r.regex_rules()],
            "output_type": type_id(r.output) if r.output else None,
            "embd_type": type_id(r.token_embd) if r.token_embd else None,
        }
        mib = predict(info, r).file_bytes / (1 << 20)
        found.append(Variant(r.name, "recipe", spec, mib))
    return found


def recipe_variants(src: Path, dense: bool) -> list[Variant]:
    """The project's recipes for ``src`` (none for a dense model), then the bench's own."""
    return [*([] if dense else project_recipes(src)), *bench_recipes(dense)]
