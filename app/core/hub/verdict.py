"""Will a quant run on this machine, and how fast? Judged from its size before downloading it.

The planner needs a file's tensor inventory, which only exists once the file is here. For
the quant picker Herd estimates from the size and the Llama 4 shapes: Scout keeps about 10%
of its bytes in dense weights (attention, shared expert, embeddings) and reads 1 of its 16
routed experts per token; Maverick keeps about 3.5% dense and reads 1 of 128. The memory
margins and bandwidth figures are the planner's own; once downloaded, ``herd plan`` and the
offload panel give the exact plan.

Each quant also gets a quality hint from its family (what the llama.cpp community reports
for perplexity and answers: Q8_0 and Q6_K near-lossless, Q5 and Q4_K_M good, Q3 fair, Q2
low, IQ1 very low), so a 1-bit quant's speed does not pass for the best choice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from app.core.hardware.probe import Hardware
from app.core.plan.bandwidth import cpu_bandwidth, gpu_bandwidth
from app.core.plan.search import Wishes, margin
from app.core.units import size_text

GiB = 1 << 30
RESERVE = 2 * GiB  # KV cache and compute buffers for a chat-sized context
USABLE_TOK_S = 10.0  # slower than this feels like waiting, not chatting


class Fit(StrEnum):
    """Where a quant's weights would live."""

    ALL_GPU = "all on GPU"
    EXPERTS_CPU = "experts in CPU memory"
    CPU_ONLY = "CPU only"
    NO_FIT = "does not fit"


@dataclass(frozen=True, slots=True)
class Shape:
    """The share of a model's bytes that is dense, and of expert bytes read per token."""

    dense_share: float
    experts_read_share: float


SCOUT = Shape(dense_share=0.10, experts_read_share=1 / 16)
MAVERICK = Shape(dense_share=0.035, experts_read_share=1 / 128)


def shape_for(name: str) -> Shape:
    """Maverick's shape for a 128-expert repository or file, else Scout's."""
    low = name.lower()
    return MAVERICK if "maverick" in low or "128e" in low else SCOUT


@dataclass(frozen=True, slots=True)
class Verdict:
    """A quant on this machine: where it goes, the estimated speed, in words."""

    fit: Fit
    tok_s: float
    planned: bool = False  # from the planner on the real headers, not from the size
    n_ctx: int = 0  # the planned context (planner verdicts only)

    @property
    def fits(self) -> bool:
        """Whether it can run at all."""
        return self.fit is not Fit.NO_FIT

    def text(self) -> str:
        """``all on GPU, about 40 tok/s`` / ``experts in CPU memory at about 9 tok/s``.

        A planner verdict adds its context: ``…, 32,768 tokens of context``.
        """
        if self.fit is Fit.NO_FIT:
            return "does not fit"
        if self.fit is Fit.EXPERTS_CPU:
            text = f"experts in CPU memory at about {self.tok_s:.0f} tok/s"
        else:
            text = f"{self.fit.value}, about {self.tok_s:.0f} tok/s"
        if self.planned and self.n_ctx:
            return f"{text}, {self.n_ctx:,} tokens of context"
        return text

    def badge(self) -> str:
        """The short form for a badge: ``fits on GPU, ~40 tok/s``, ``experts in RAM, ~9 tok/s``."""
        if self.fit is Fit.NO_FIT:
            return "does not fit"
        where = {Fit.ALL_GPU: "fits on GPU", Fit.EXPERTS_CPU: "experts in RAM"}
        speed = f"~{self.tok_s:.0f}" if self.tok_s >= 1 else "<1"
        return f"{where.get(self.fit, 'CPU only')}, {speed} tok/s"


class Quality(IntEnum):
    """How close a quant's answers stay to the original weights' (higher is closer)."""

    VERY_LOW = 1
    LOW = 2
    FAIR = 3
    GOOD = 4
    NEAR_LOSSLESS = 5
    ORIGINAL = 6

    def text(self) -> str:
        """The hint shown beside the quant."""
        return QUALITY_WORDS[self]


QUALITY_WORDS = {
    Quality.VERY_LOW: "very low — answers suffer",
    Quality.LOW: "low",
    Quality.FAIR: "fair",
    Quality.GOOD: "good",
    Quality.NEAR_LOSSLESS: "near-lossless",
    Quality.ORIGINAL: "original precision",
}
_FAMILIES = (  # first match wins; matched on the name without unsloth's "UD-"
    (re.compile(r"^(F32|F16|BF16)$"), Quality.ORIGINAL),
    (re.compile(r"^(Q8|Q6)_"), Quality.NEAR_LOSSLESS),
    (re.compile(r"^(Q5_|Q4_|IQ4_|MXFP4)"), Quality.GOOD),
    (re.compile(r"^I?Q3_"), Quality.FAIR),
    (re.compile(r"^I?Q2_"), Quality.LOW),
    (re.compile(r"^(IQ1_|TQ1_|TQ2_)"), Quality.VERY_LOW),
)
# Well below 3 bits per weight (IQ2_XXS 2.06, IQ2_XS 2.31, the 1-bit ones): never suggested
# while a quant of real precision runs (the first-run advice draws the same line).
_TOO_COARSE = re.compile(r"^(IQ1_|TQ1_|TQ2_|IQ2_XXS$|IQ2_XS$)")


def quality(quant: str) -> Quality | None:
    """The quality hint of a quant name (``UD-Q4_K_XL``: good); None for an unknown name."""
    bare = quant.upper().removeprefix("UD-")
    return next((q for pattern, q in _FAMILIES if pattern.match(bare)), None)


def too_coarse(quant: str) -> bool:
    """Whether a quant is so coarse that answers clearly suffer (IQ1, IQ2_XXS, IQ2_XS)."""
    return bool(_TOO_COARSE.match(quant.upper().removeprefix("UD-")))


def judge(size: int, name: str, hardware: Hardware) -> Verdict:
    """The verdict for a model of ``size`` bytes called ``name`` on ``hardware``."""
    shape = shape_for(name)
    wishes = Wishes()
    dense = size * shape.dense_share
    experts = size - dense
    expert_reads = experts * shape.experts_read_share
    ram = hardware.ram_available - margin(hardware.ram_total, wishes)
    gpus = [] if hardware.unified_memory and not hardware.devices else list(hardware.devices)
    if hardware.unified_memory:
        pool = hardware.gpu_working_set_limit or hardware.ram_available
        vram = pool - margin(pool, wishes)
    else:
        vram = sum(d.free_bytes - margin(d.total_bytes, wishes) for d in gpus)
    if gpus:
        desc = gpus[0].description
        gpu_gbps = gpu_bandwidth(desc, gpus[0].backend)[0] * 1e9
        cpu_gbps = cpu_bandwidth(desc if hardware.unified_memory else None) * 1e9
        if size + RESERVE <= vram:
            return Verdict(Fit.ALL_GPU, gpu_gbps / (dense + expert_reads))
        if dense + RESERVE <= vram and size - vram + RESERVE <= ram:
            on_gpu = min(experts, vram - dense - RESERVE) / experts if experts else 1.0
            seconds = (dense + on_gpu * expert_reads) / gpu_gbps
            seconds += (1 - on_gpu) * expert_reads / cpu_gbps
            return Verdict(Fit.EXPERTS_CPU, 1 / seconds)
    elif size + RESERVE <= ram:
        return Verdict(Fit.CPU_ONLY, cpu_bandwidth() * 1e9 / (dense + expert_reads))
    return Verdict(Fit.NO_FIT, 0.0)


def tier(quant: str, verdict: Verdict) -> int | None:
    """Which of the suggestion rules a quant meets first (lower is better; None: no fit).

    0: not too coarse (:func:`too_coarse`) at a chatting speed; 1: not too coarse at half
    that speed; 2: any at a chatting speed; 3: it only fits. The quant picker
    (:func:`recommend`) and the first-run advice (:mod:`app.core.first_run`) both rank by it.
    """
    if not verdict.fits:
        return None
    fine = not too_coarse(quant)
    if fine and verdict.tok_s >= USABLE_TOK_S:
        return 0
    if fine and verdict.tok_s >= USABLE_TOK_S / 2:
        return 1
    return 2 if verdict.tok_s >= USABLE_TOK_S else 3


def recommend(
    verdicts: Sequence[tuple[int, Verdict]], names: Sequence[str] | None = None
) -> int | None:
    """Index of the quant to suggest among (size, verdict) pairs, or None if none fits.

    The best :func:`tier` (by ``names``); within it, all on the GPU first, then the largest.
    When no quant meets a rule, the fastest that fits at all.
    """
    names = list(names) if names is not None else [""] * len(verdicts)
    ranked = [(tier(names[i], v), i, s, v) for i, (s, v) in enumerate(verdicts)]
    fitting = [(t, i, s, v) for t, i, s, v in ranked if t is not None]
    if not fitting:
        return None
    best = min(t for t, _, _, _ in fitting)
    if best < 3:
        found = [x for x in fitting if x[0] == best]
        return max(found, key=lambda x: (x[3].fit is Fit.ALL_GPU, x[2]))[1]
    return max(fitting, key=lambda x: x[3].tok_s)[1]


def machine_text(hardware: Hardware) -> str:
    """The machine the verdicts are for, in words.

    ``NVIDIA GeForce RTX 4090 (23.2 GiB free) and 62.0 GiB of RAM free``.
    """
    ram = size_text(hardware.ram_available)
    if hardware.unified_memory:
        name = hardware.devices[0].description if hardware.devices else "this Mac"
        return f"{name}, {ram} of unified memory free"
    gpus = ", ".join(f"{d.description} ({size_text(d.free_bytes)} free)" for d in hardware.devices)
    return f"{gpus} and {ram} of RAM free" if gpus else f"no GPU, {ram} of RAM free"


def need_and_have(size: int, hardware: Hardware) -> tuple[int, str]:
    """Bytes a model of ``size`` needs free with its working memory, and what is free.

    The second is in words: ``57.0 GiB of RAM and 23.2 GiB of GPU memory``.
    """
    need = size + RESERVE + margin(hardware.ram_total, Wishes())
    have = size_text(hardware.ram_available) + " of RAM"
    gpu = sum(d.free_bytes for d in hardware.devices)
    if gpu and not hardware.unified_memory:
        have += f" and {size_text(gpu)} of GPU memory"
    return need, have


def why_none_fits(size: int, name: str, hardware: Hardware) -> tuple[str, str]:
    """Why the smallest quant (``size`` bytes, called ``name``) does not fit, and what to do."""
    need, have = need_and_have(size, hardware)
    why = (
        f"Even the smallest quant here ({size_text(size)}) needs about {size_text(need)} "
        f"free with its working memory; this computer has {have} free."
    )
    do = "Close other programs and look again, or use a computer with more memory."
    if shape_for(name) is MAVERICK:
        do = (
            "Llama 4 Scout needs about a quarter of Maverick's memory: choose a Scout "
            "repository on the left. Or close other programs, or use a computer with more "
            "memory."
        )
    return why, do
