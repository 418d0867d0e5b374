"""The quantize job: plan (header, prediction, verdict, checks), then write, or nothing.

:func:`plan_quantize` reads only headers and says what will be written and how it will
run; :func:`run_quantize` checks the disk space first, has llama.cpp write to a temporary
name in the output's folder (``OUT.partial``), renames on success and deletes every
partial file on failure, cancel or Ctrl+C.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.engine.quantizer import (
    QuantizeCancelled,
    QuantizeError,
    QuantizeEvent,
    QuantizeFinished,
    QuantizeProgress,
    QuantizeSpec,
    output_paths,
    run_quantizer,
)
from app.core.gguf.info import GGUFInfo, read_gguf
from app.core.gguf.reader import SPLIT_RE
from app.core.hardware.probe import Hardware
from app.core.jobs import CancelToken
from app.core.units import size_text
from quantize.imatrix import Imatrix, ImatrixError, expected_size, read_imatrix
from quantize.predict import Prediction, predict
from quantize.recipe import IMATRIX_TYPES, Recipe, ftype_id, type_id
from quantize.verdict import Verdict, judge

__all__ = [
    "QuantizeCancelled", "QuantizeDone", "QuantizeError", "QuantizeEvent", "QuantizeFinished",
    "QuantizePlan", "QuantizeProgress", "QuantizeRequest", "check_imatrix", "plan_quantize",
    "run_quantize",
]  # fmt: skip

QuantizeDone = QuantizeFinished
DISK_SLACK = 64 << 20  # free space kept beyond the predicted size
_FLOATS = frozenset({"F32", "F16", "BF16"})


@dataclass(frozen=True, slots=True)
class QuantizeRequest:
    """What to quantize, with which recipe, to where."""

    src: Path
    out: Path
    recipe: Recipe
    imatrix: Path | None = None
    keep_split: bool = False
    threads: int = 0
    hardware: Hardware | None = None  # judge on this machine instead of the recipe's


@dataclass(frozen=True, slots=True)
class QuantizePlan:
    """Everything known before writing: the prediction, the verdict, the checks."""

    request: QuantizeRequest
    info: GGUFInfo
    prediction: Prediction
    verdict: Verdict
    imatrix: Imatrix | None
    warnings: tuple[str, ...]

    @property
    def outputs(self) -> tuple[Path, ...]:
        """The files a run will leave."""
        out = self.request.out
        if not self.request.keep_split or len(self.info.parts) <= 1:
            return (out,)
        stem = SPLIT_RE.sub("", out.name).removesuffix(".gguf")
        n = len(self.info.parts)
        return tuple(out.with_name(f"{stem}-{i + 1:05d}-of-{n:05d}.gguf") for i in range(n))


def check_imatrix(imatrix: Imatrix, prediction: Prediction) -> tuple[str, ...]:
    """Match an importance matrix against what will be quantized; returns warnings.

    Raises:
        ImatrixError: an entry that a very low-bit type needs is missing, an entry's size
            does not fit its tensor, or holds values that are not finite.
    """
    warnings = []
    for t in prediction.tensors:
        if t.pattern == "kept" or t.type == t.src_type:
            continue
        values = imatrix.entries.get(t.name)
        top = t.name in ("token_embd.weight", "output.weight")
        if values is None:
            if t.type in IMATRIX_TYPES and not top:
                raise ImatrixError(
                    f"The importance matrix {imatrix.path.name} has no entry for {t.name}, "
                    f"which the recipe writes as {t.type}",
                    "Very low-bit types need one: make the imatrix with llama-imatrix on this "
                    "very model, or choose a recipe without IQ1/IQ2 types.",
                )
            if not top:
                warnings.append(f"the importance matrix has no entry for {t.name}")
            continue
        if values.size != expected_size(t.shape) and not top:
            raise ImatrixError(
                f"The importance matrix entry for {t.name} has {values.size} values; "
                f"the tensor needs {expected_size(t.shape)}",
                "The imatrix was made for another model: make it again for this one.",
            )
        if not np.isfinite(values).all():
            raise ImatrixError(f"The importance matrix entry for {t.name} is not finite.")
    return tuple(warnings)


def plan_quantize(request: QuantizeRequest) -> QuantizePlan:
    """Read the headers, predict the output, judge it, check the imatrix; writes nothing.

    Raises:
        ModelFileError: the source is missing, not a GGUF, truncated or corrupt.
        ImatrixError: the importance matrix cannot be read or does not fit.
    """
    info = read_gguf(request.src)
    prediction = predict(info, request.recipe)
    verdict = judge(prediction, request.recipe, request.hardware)
    warnings: list[str] = []
    imatrix = None
    if request.imatrix is not None:
        imatrix = read_imatrix(request.imatrix)
        warnings += check_imatrix(imatrix, prediction)
    elif request.recipe.needs_imatrix:
        warnings.append(_needs_imatrix(request.recipe))
    return QuantizePlan(request, info, prediction, verdict, imatrix, tuple(warnings))


def _needs_imatrix(recipe: Recipe) -> str:
    low = sorted({r.type for r in recipe.rules if r.type in IMATRIX_TYPES})
    return (
        f"recipe {recipe.name} uses {', '.join(low)}, which llama.cpp writes only with an "
        "importance matrix: give --imatrix FILE (made by llama-imatrix)"
    )


def _partial(out: Path) -> Path:
    return out.with_name(f"{out.name}.partial")


def _check_target(plan: QuantizePlan) -> None:
    req = plan.request
    if req.recipe.needs_imatrix and plan.imatrix is None:
        raise QuantizeError(_needs_imatrix(req.recipe).capitalize() + ".")
    requant = sorted({t.src_type for t in plan.prediction.tensors if t.src_type not in _FLOATS
                      and t.pattern != "kept"})  # fmt: skip
    if requant:
        raise QuantizeError(
            f"{plan.info.path.name} is already quantized ({', '.join(requant)}); llama.cpp "
            "does not quantize it again (that would lose quality twice).",
            "Quantize from the F32, F16 or BF16 GGUF of the model.",
        )
    folder = req.out.parent
    if not folder.is_dir():
        raise QuantizeError(f"The folder {folder} does not exist.", "Create it first.")
    if any(p.resolve() in {q.resolve() for q in plan.info.parts} for p in plan.outputs):
        raise QuantizeError("The output would overwrite the source.", "Choose another name.")
    existing = [p.name for p in plan.outputs if p.exists()]
    if existing:
        raise QuantizeError(f"{existing[0]} already exists.", "Remove it or choose another name.")
    need = plan.prediction.file_bytes + DISK_SLACK
    free = shutil.disk_usage(folder).free
    if free < need:
        raise QuantizeError(
            f"Not enough disk space in {folder}: the output needs about {size_text(need)}, "
            f"{size_text(free)} is free.",
            "Free some space or write the output to another disk.",
        )


def run_quantize(
    plan: QuantizePlan, cancel: CancelToken, *, log_path: Path
) -> Iterator[QuantizeEvent]:
    """Write the planned output; yields progress, then finished (or cancelled).

    Raises:
        QuantizeError: not enough disk space, the output exists, no imatrix where one is
            needed, or llama.cpp failed (the disk filled up, a bad tensor): nothing that
            was half written stays behind.
    """
    _check_target(plan)
    req = plan.request
    n_parts = len(plan.info.parts)
    keep_split = req.keep_split and n_parts > 1
    stem = SPLIT_RE.sub("", req.out.name).removesuffix(".gguf")
    dst = req.out.with_name(f"{stem}.partial") if keep_split else _partial(req.out)
    npz = req.out.with_name(f"{req.out.name}.imatrix.partial.npz")
    recipe = req.recipe
    spec = QuantizeSpec(
        src=str(plan.info.path),
        dst=str(dst),
        ftype=ftype_id(recipe.ftype),
        overrides=recipe.regex_rules(),
        token_embd=type_id(recipe.token_embd) if recipe.token_embd else None,
        output=type_id(recipe.output) if recipe.output else None,
        imatrix=str(npz) if plan.imatrix else None,
        keep_split=keep_split,
        threads=req.threads,
    )
    partials = output_paths(spec, n_parts)
    done = False
    try:
        if plan.imatrix is not None:
            with npz.open("wb") as f:
                np.savez(f, **plan.imatrix.entries)  # type: ignore[arg-type]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        for event in run_quantizer(
            spec, plan.prediction.file_bytes, cancel, n_parts=n_parts, log_path=log_path
        ):
            if isinstance(event, QuantizeFinished):
                for src, final in zip(partials, plan.outputs, strict=True):
                    os.replace(src, final)
                done = True
                yield QuantizeFinished(plan.outputs, event.written, event.seconds)
                return
            yield event
    except QuantizeError as exc:
        raise _explained(exc, req.out.parent, plan.prediction.file_bytes) from None
    except OSError as exc:
        raise QuantizeError(f"Quantizing failed: {exc.strerror or exc}.") from None
    finally:
        npz.unlink(missing_ok=True)
        if not done:
            for p in partials:
                p.unlink(missing_ok=True)


def _explained(exc: QuantizeError, folder: Path, expected: int) -> QuantizeError:
    """llama.cpp's failure in words a person can act on."""
    text = exc.user_message
    hint = exc.hint
    if "iostream error" in text or "No space" in text or shutil.disk_usage(folder).free < (1 << 20):
        text = f"The disk filled up while writing the output in {folder}"
        hint = f"It needs about {size_text(expected)}; free some space and try again."
    elif "imatrix" in text.lower() or "importance matrix" in text.lower():
        hint = hint or "Give --imatrix FILE made by llama-imatrix for this model."
    elif not hint:
        hint = "The log says more."
    return QuantizeError(text, hint, log_path=exc.log_path)
