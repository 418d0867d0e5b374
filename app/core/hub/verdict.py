"""Will a quant run on this machine, and how fast? Judged from its size before downloading it.

The planner needs a file's tensor inventory, which only exists once the file is here. For
the quant picker Herd estimates from the size and the Llama 4 shapes: Scout keeps about 10%
of its bytes in dense weights (attention, shared expert, embeddings) and reads 1 of its 16
routed experts per token; Maverick keeps about 3.5% dense and reads 1 of 128. The memory
margins and bandwidth figures are the planner's own; once downloaded, ``herd plan`` and the
offload panel give the exact plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.core.hardware.probe import Hardware
from app.core.plan.bandwidth import cpu_bandwidth, gpu_bandwidth
from app.core.plan.search import Wishes, margin
from app.core.plan.words import size as fmt_size

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
        """``all on GPU, about 40 tok/s`` / ``experts in CPU memory at about 9 tok/s``."""
        if self.fit is Fit.NO_FIT:
            return "does not fit"
        if self.fit is Fit.EXPERTS_CPU:
            text = f"experts in CPU memory at about {self.tok_s:.0f} tok/s"
        else:
            text = f"{self.fit.value}, about {self.tok_s:.0f} tok/s"
        return f"{text}, {self.n_ctx // 1024}k context" if self.planned and self.n_ctx else text


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


def recommend(verdicts: Sequence[tuple[int, Verdict]]) -> int | None:
    """Index of the quant to suggest among (size, verdict) pairs, or None if none fits.

    The largest that runs all on the GPU; else the largest that still makes a usable chat
    speed; else the fastest that fits at all.
    """
    fitting = [(i, s, v) for i, (s, v) in enumerate(verdicts) if v.fits]
    if not fitting:
        return None
    on_gpu = [x for x in fitting if x[2].fit is Fit.ALL_GPU]
    if on_gpu:
        return max(on_gpu, key=lambda x: x[1])[0]
    usable = [x for x in fitting if x[2].tok_s >= USABLE_TOK_S]
    if usable:
        return max(usable, key=lambda x: x[1])[0]
    return max(fitting, key=lambda x: x[2].tok_s)[0]


def size_text(n: int) -> str:
    """Bytes as the planner writes them (GiB / MiB), and KiB below one MiB."""
    return f"{n / 1024:.0f} KiB" if n < 1 << 20 else fmt_size(n)
