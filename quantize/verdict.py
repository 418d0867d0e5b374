"""The planner's verdict on a recipe: does its predicted file fit the machine, and how fast.

The predicted output (:meth:`quantize.predict.Prediction.as_info`) is planned exactly as a
load would be (:func:`app.core.plan.planner.make_plan`) on the recipe's machine, so the
words before quantizing are the words the load will say after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.gguf.info import GGUFInfo
from app.core.hardware.probe import Hardware
from app.core.plan.planner import Plan, Wishes, make_plan
from app.core.units import size_text
from quantize.layouts import family_of
from quantize.predict import Prediction, predict
from quantize.recipe import Recipe, load_recipes


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the planner says of a recipe's file on one machine."""

    machine: str  # the machine in words
    fits: bool
    n_ctx: int
    gpu_expert_layers: int  # MoE layers whose routed experts sit on a GPU
    n_moe_layers: int
    has_gpu: bool
    unified: bool
    tok_s: float
    disk_bytes: int
    plan: Plan

    def experts_where(self) -> str:
        """Where the routed experts go, in words."""
        if not self.n_moe_layers:
            return "no routed experts"
        if self.unified:
            if self.disk_bytes:
                return "mapped from the file"
            return "partly on the CPU side" if _spilled(self) else "all in unified memory"
        if not self.has_gpu or self.gpu_expert_layers == 0:
            return "all in RAM"
        if self.gpu_expert_layers >= self.n_moe_layers:
            return "all on the GPU"
        return f"{self.gpu_expert_layers}/{self.n_moe_layers} layers on the GPU, the rest in RAM"

    def summary(self) -> str:
        """One line: fits or not, where the experts go, the speed."""
        if not self.fits:
            head = "does not fit"
            if self.disk_bytes:
                head += f" (would read {size_text(self.disk_bytes)} from disk)"
        else:
            head = f"fits at {self.n_ctx // 1024}K context"
            if self.disk_bytes:
                head += f" only by reading {size_text(self.disk_bytes)} from disk"
        return f"{head}; experts {self.experts_where()}; about {self.tok_s:.1f} tok/s"

    def to_json(self) -> dict[str, Any]:
        """The verdict for ``--json``."""
        return {
            "machine": self.machine,
            "fits": self.fits,
            "n_ctx": self.n_ctx,
            "experts": self.experts_where(),
            "gpu_expert_layers": self.gpu_expert_layers,
            "n_moe_layers": self.n_moe_layers,
            "predicted_decode_tok_s": round(self.tok_s, 1),
            "disk_bytes": self.disk_bytes,
        }


def machine_words(hw: Hardware) -> str:
    """A machine in a few words: ``NVIDIA GeForce RTX 4090 (24 GB) + 63 GB RAM``."""
    ram = size_text(hw.ram_total)
    if hw.unified_memory:
        return f"{hw.devices[0].description if hw.devices else 'Mac'} ({ram} unified)"
    gpus = " + ".join(f"{d.description} ({size_text(d.total_bytes)})" for d in hw.devices)
    return f"{gpus} + {ram} RAM" if gpus else f"CPU only, {ram} RAM"


def judge(
    prediction: Prediction,
    recipe: Recipe | None = None,
    hardware: Hardware | None = None,
    wishes: Wishes | None = None,
) -> Verdict:
    """Plan the predicted file on ``hardware`` (default: the recipe's machine)."""
    recipe = recipe or prediction.recipe
    hw = hardware or recipe.machine.hardware()
    plan = make_plan(prediction.as_info(), hw, wishes or Wishes(allow_disk=recipe.allow_disk))
    has_gpu = any(d.kind == "gpu" for d in plan.devices)
    return Verdict(
        machine=machine_words(hw),
        fits=plan.fits,
        n_ctx=plan.n_ctx,
        gpu_expert_layers=len(plan.gpu_expert_layers),
        n_moe_layers=plan.n_moe_layers,
        has_gpu=has_gpu,
        unified=plan.unified_memory,
        tok_s=plan.predicted_decode_tok_s,
        disk_bytes=plan.disk_bytes,
        plan=plan,
    )


def choose_recipe(
    info: GGUFInfo, hardware: Hardware, recipes: Sequence[Recipe] | None = None
) -> tuple[Recipe, Verdict] | None:
    """The recipe for ``info``'s model on ``hardware``, by the planner's verdicts.

    Of the recipes whose file fits in memory (on a Mac: with every expert on the GPU, not
    spilled to the CPU side of the same memory), the biggest: the most bits. When none
    fits, the smallest, read partly from disk. None when no recipe is for this model (not
    Scout or Maverick).
    """
    family = family_of(info)
    mine = [r for r in (recipes or load_recipes()) if r.family == family != "any"]
    if not mine:
        return None
    judged = []
    for r in mine:
        pred = predict(info, r)
        judged.append((pred.file_bytes, r, judge(pred, r, hardware, Wishes())))
    fitting = [j for j in judged if j[2].fits and not _spilled(j[2])]
    if fitting:
        size, r, verdict = max(fitting, key=lambda j: (j[0], _same_kind(j[1], hardware)))
        return r, verdict
    size, r, _ = min(judged, key=lambda j: (j[0], not _same_kind(j[1], hardware)))
    return r, judge(predict(info, r), r, hardware, Wishes(allow_disk=True))


def _spilled(verdict: Verdict) -> bool:
    """Unified memory with routed experts on the CPU side: it fits, but slowly."""
    cpu = [d for d in verdict.plan.devices if d.kind == "cpu"]
    return verdict.unified and any(d.experts > 0 for d in cpu)


def _same_kind(recipe: Recipe, hardware: Hardware) -> bool:
    """Whether the recipe was made for the same kind of machine (a Mac, or a PC)."""
    return recipe.machine.hardware().unified_memory == hardware.unified_memory
