"""The Quantize dialog's two jobs (preview and run) and the words it shows; no Qt here.

Both run on the dialog's :class:`~app.ui.worker.JobRunner`. The preview is
:func:`quantize.job.plan_quantize` judged on this computer (the source's header read, the
recipe's output predicted and planned as a load would be); the run is
:func:`quantize.job.run_quantize` on that plan, whose failures arrive as :class:`RunFailed`.
"""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import HerdError
from app.core.hardware.probe import Hardware, probe_hardware
from app.core.jobs import CancelToken
from app.core.units import size_text
from quantize.job import QuantizePlan, QuantizeRequest, plan_quantize, run_quantize
from quantize.layouts import family_of
from quantize.recipe import Recipe

_QUANT_TAG = re.compile(r"[-.](f32|f16|bf16|q\d\w*|iq\d\w*)$", re.IGNORECASE)
_SPLIT = re.compile(r"-\d{5}-of-\d{5}$")
_SOURCE_TYPES = {"F32", "F16", "BF16"}  # what llama.cpp quantizes from (no requantizing)


@dataclass(frozen=True, slots=True)
class Preview:
    """What the recipe would make of the source, and how it would run here."""

    plan: QuantizePlan
    bits_per_weight: float
    disk_free: int  # bytes free where the output goes
    other_family: str  # the recipe is for another model ("maverick"), else ""
    quantized_source: str  # the source's quantized types ("Q8_0"): llama.cpp refuses them

    @property
    def runnable(self) -> bool:
        """Whether llama.cpp can quantize this source at all."""
        return not self.quantized_source

    @property
    def file_bytes(self) -> int:
        """The predicted size of the output."""
        return self.plan.prediction.file_bytes

    @property
    def fits(self) -> bool:
        """Whether the planner says it runs on this computer."""
        return self.plan.verdict.fits


@dataclass(frozen=True, slots=True)
class PreviewFailed:
    """The source could not be read or judged."""

    error: HerdError


@dataclass(frozen=True, slots=True)
class RunFailed:
    """Quantizing failed; nothing is left at the output path."""

    error: HerdError


def recipe_tip(recipe: Recipe) -> str:
    """``Q4_K_M base; ffn_down_exps Q5_K, ffn_*_exps Q4_K, ...`` and the recipe's note."""
    types = ", ".join(f"{k} {v}" for k, v in recipe.types().items())
    return f"{recipe.ftype} base; {types}\n{recipe.note}".strip()


def default_output(source: Path, recipe: Recipe) -> Path:
    """``Model-BF16.gguf`` with ``scout-24gb-gpu`` -> ``Model-scout-24gb-gpu.gguf``, beside it."""
    stem = _SPLIT.sub("", source.stem)
    stem = _QUANT_TAG.sub("", stem) or stem
    return source.with_name(f"{stem}-{recipe.name}.gguf")


class HardwareOnce:
    """Probes this machine the first time it is asked (on a worker thread), then remembers."""

    def __init__(self, hardware: Hardware | None = None) -> None:
        self._hardware = hardware
        self._lock = threading.Lock()

    def get(self) -> Hardware:
        """This machine's hardware."""
        with self._lock:
            if self._hardware is None:
                self._hardware = probe_hardware()
            return self._hardware


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def preview_job(
    request: QuantizeRequest, hardware: HardwareOnce
) -> Callable[[CancelToken], Iterator[object]]:
    """A job that yields one :class:`Preview` (or :class:`PreviewFailed`)."""

    def job(cancel: CancelToken) -> Iterator[object]:
        try:
            hw = hardware.get()
            if cancel.cancelled:
                return
            plan = plan_quantize(dataclasses.replace(request, hardware=hw))
        except HerdError as exc:
            yield PreviewFailed(exc)
            return
        except OSError as exc:
            yield PreviewFailed(HerdError(f"{request.src.name} cannot be read: {exc}."))
            return
        except ValueError as exc:  # quantize.predict.UnpredictableError: a mix it cannot tell
            what = f"The size of {request.src.name} as {request.recipe.name} cannot be predicted"
            yield PreviewFailed(HerdError(f"{what}: {exc}.", "Choose another recipe."))
            return
        n_weights = sum(t.n_elements for t in plan.info.tensors)
        bpw = plan.prediction.file_bytes * 8 / n_weights if n_weights else 0.0
        family = family_of(plan.info)
        other = request.recipe.family if request.recipe.family not in ("any", family) else ""
        quantized = sorted(
            {t.type_name for t in plan.info.tensors if len(t.shape) > 1} - _SOURCE_TYPES
        )
        yield Preview(plan, bpw, _free_bytes(request.out.parent), other, ", ".join(quantized))

    return job


def run_job(plan: QuantizePlan, log_path: Path) -> Callable[[CancelToken], Iterator[object]]:
    """A job that quantizes; a failure is a :class:`RunFailed` event, not an exception."""

    def job(cancel: CancelToken) -> Iterator[object]:
        try:
            yield from run_quantize(plan, cancel, log_path=log_path)
        except HerdError as exc:
            yield RunFailed(exc)

    return job


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def preview_text(p: Preview) -> str:
    """The preview's lines, as rich text."""
    verdict = p.plan.verdict
    disk = _esc(f"{size_text(p.disk_free)} free on that disk")
    if p.disk_free < p.file_bytes:
        disk = f"<b>only {disk}</b>"
    says = _esc(verdict.summary())
    if not verdict.fits:
        says = f"<b>{says}</b>"
    if p.quantized_source:
        return (
            f"<b>{_esc(p.plan.info.path.name)} is already quantized ({p.quantized_source}).</b>"
            "<br>llama.cpp quantizes only from F32, F16 or BF16: choose the original file."
        )
    lines = [
        f"Predicted size: <b>{_esc(size_text(p.file_bytes))}</b> "
        f"({p.bits_per_weight:.2f} bits per weight), {disk}",
        f"On this computer ({_esc(verdict.machine)}): {says}",
    ]
    if p.other_family:
        lines.append(_esc(f"This recipe is made for Llama 4 {p.other_family.capitalize()}."))
    lines += [_esc(f"Note: {w}") for w in p.plan.warnings]
    return "<br>".join(lines)


def progress_text(written: int, expected: int, eta_s: float | None) -> str:
    """``3.1 GiB of 12.4 GiB written, about 2 min left``."""
    text = f"{size_text(written)} of {size_text(expected)} written"
    if eta_s is None:
        return text
    left = f"{eta_s / 60:.0f} min" if eta_s >= 90 else f"{max(1, round(eta_s))} s"
    return f"{text}, about {left} left"
