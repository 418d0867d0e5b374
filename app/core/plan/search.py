"""The planner's search: trials of one placement at different context sizes.

:class:`PlanSearch` holds what does not change while the planner looks for a context
that fits (the model's shape and weight bytes, the devices' budgets) and runs
:func:`app.core.plan.placement.place` for one context size at a time: about 20 trials per plan.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from app.core.gguf.info import GGUFInfo
from app.core.hardware.probe import Hardware
from app.core.hardware.workers import Worker
from app.core.plan.bandwidth import DISK_GBPS, cpu_bandwidth, gpu_bandwidth
from app.core.plan.kv_estimate import (
    CTX_PAD,
    KVEstimate,
    ModelShape,
    compute_buffer_bytes,
    host_compute_bytes,
    kv_cache,
    model_shape,
)
from app.core.plan.placement import Budgets, LayerCosts, Placement, layer_costs, place
from app.core.plan.remote import NetworkCost, network_cost, remote_devices, spread
from app.core.settings import KVType

MiB, GiB = 1 << 20, 1 << 30
# A model without a chosen context starts at its trained one, capped here and by what fits.
# A context is reserved whole at load, so a larger one takes memory that routed experts
# could use (slower replies) for tokens a chat rarely reaches; 32K tokens is about 25,000
# words. Raised per model in Offload & Context or with --ctx.
DEFAULT_MAX_AUTO_CTX = 32_768
DECODE_FILL = 4096  # the predicted speed is for a conversation this many tokens long
DECODE_OVERHEAD_S = 0.0015  # per token: kernel launches, syncs, sampling (not bandwidth)


@dataclass(frozen=True, slots=True)
class Wishes:
    """What the person asks of a plan; None leaves the choice to the planner."""

    n_ctx: int | None = None  # None: the largest that fits, up to max_auto_ctx
    max_auto_ctx: int = DEFAULT_MAX_AUTO_CTX
    kv_type: KVType = KVType.F16
    flash_attn: bool | None = None  # None: on (needed for quantized KV; smaller buffers)
    gpu_expert_layers: int | None = None  # pinned MoE layers with experts on GPU; None: max
    allow_disk: bool = False  # read weights beyond RAM from disk through mmap (slow)
    use_gpu: bool = True
    safety_fraction: float = 0.05  # of each device's memory kept free ...
    safety_min_bytes: int = 512 * MiB  # ... or this much, whichever is more
    n_ubatch: int = 512
    os_reserve_bytes: int = 8 * GiB  # Apple: left to the OS by the wired-limit advice


def margin(capacity: int, wishes: Wishes) -> int:
    """Bytes kept free on a device of ``capacity`` bytes."""
    return max(int(capacity * wishes.safety_fraction), wishes.safety_min_bytes)


@dataclass(frozen=True, slots=True)
class Trial:
    """One context size tried: its KV cache, placement, bytes read from disk, verdict."""

    kv: KVEstimate
    placement: Placement
    disk: int
    fits: bool


class PlanSearch:
    """One planning request: the fixed inputs, and trials at different context sizes."""

    def __init__(
        self,
        info: GGUFInfo,
        hw: Hardware,
        wishes: Wishes,
        model: tuple[ModelShape, LayerCosts] | None = None,
        workers: tuple[Worker, ...] = (),
    ) -> None:
        self.info, self.hw, self.wishes, self.workers = info, hw, wishes, workers
        self.remote = remote_devices(workers)
        self.shape, self.costs = model or (model_shape(info), layer_costs(info))
        self.kv_type = KVType(wishes.kv_type)
        self.flash_attn = wishes.flash_attn is not False or self.kv_type is not KVType.F16
        self.gpus = hw.devices if wishes.use_gpu else ()
        self.unified = bool(hw.unified_memory and self.gpus)
        ram_budget = max(hw.ram_available - margin(hw.ram_total, wishes), 0)
        caps = tuple(self._gpu_capacity(i) for i in range(len(self.gpus)))
        gpu_budgets = []
        for i, d in enumerate(self.gpus):
            free = min(d.free_bytes, caps[i]) if d.free_bytes > 0 else caps[i]
            usable = free - margin(caps[i], wishes)
            gpu_budgets.append(max(min(usable, ram_budget) if self.unified else usable, 0))
        remote = tuple(
            min(
                max(d.device.free_bytes - margin(d.device.total_bytes, wishes), 0),
                d.device.offer_bytes or d.device.free_bytes,
            )
            for d in self.remote
        )
        pool = ram_budget if self.unified else None
        self.budgets = Budgets(tuple(gpu_budgets), ram_budget, pool, remote)
        self.capacities = caps

    def _gpu_capacity(self, i: int) -> int:
        d = self.gpus[i]
        if self.unified:  # the working-set limit; the device's total is all of the RAM
            limit = self.hw.gpu_working_set_limit or d.free_bytes or d.total_bytes
            return min(limit, self.hw.ram_total)
        return d.total_bytes

    def trial(self, n_ctx: int, budgets: Budgets | None = None) -> Trial:
        """Place the model with an ``n_ctx`` context (on ``budgets``, else the machine's)."""
        w = self.wishes
        kv = kv_cache(self.shape, n_ctx, self.kv_type, self.kv_type, w.n_ubatch, swa_full=False)
        full = compute_buffer_bytes(self.shape, kv, w.n_ubatch, self.flash_attn)
        host = host_compute_bytes(self.shape, kv, w.n_ubatch, self.flash_attn)
        budgets = budgets or self.budgets
        p = place(self.costs, kv.per_layer, budgets, full, host, full, w.gpu_expert_layers)
        if self.remote:
            p = self._with_workers(p, kv, budgets, (full, host))
        disk, fits = 0, p.fits
        if not fits and w.allow_disk and p.pinned_short <= 0:
            if 0 < p.ram_over <= p.cpu.weights + p.cpu.experts:
                disk, fits = p.ram_over, True
        return Trial(kv, p, disk, fits)

    def _with_workers(
        self, p: Placement, kv: KVEstimate, budgets: Budgets, compute: tuple[int, int]
    ) -> Placement:
        """The best of a few splits between this machine's GPUs and the workers.

        The local GPUs keep the last layers; fewer of them leaves whole layers, experts
        and all, to the workers' devices (their GPUs read experts far faster than our
        CPU). Tried: as many as fit, none, and a few between; kept: the fastest that fits.
        """
        full, host = compute
        pinned = self.wishes.gpu_expert_layers
        local = sum(1 for g in p.layer_gpu if g >= 0)
        tries = {local} | {round(local * f) for f in (0.0, 0.25, 0.5, 0.75)} if p.gpus else {0}
        best: tuple[bool, float, Placement] | None = None
        for k in sorted(tries, reverse=True):
            base = (
                p
                if k == local
                else place(self.costs, kv.per_layer, budgets, full, host, full, pinned, k)
            )
            q = spread(base, self.costs, kv.per_layer, budgets, self.remote, full)
            score = (q.fits, self.decode_tok_s(Trial(kv, q, 0, q.fits))[0], q)
            if best is None or score[:2] > best[:2]:
                best = score
        assert best is not None
        return best[2]

    def max_ctx(self, limit: int) -> int:
        """The largest context up to ``limit`` that fits (0: not even 256 tokens)."""
        if not self.trial(CTX_PAD).fits:
            return 0
        if self.trial(limit).fits:
            return limit
        lo, hi = 1, -(-limit // CTX_PAD)  # in units of CTX_PAD: lo fits, hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.trial(mid * CTX_PAD).fits else (lo, mid)
        best = lo * CTX_PAD
        return best - best % 1024 if best >= 4096 else best

    def decode_tok_s(self, trial: Trial) -> tuple[float, list[float], float]:
        """Predicted tokens/s, bytes read per token on each GPU, and on the CPU side."""
        c, p, kv = self.costs, trial.placement, trial.kv
        frac = self.shape.n_experts_used / self.shape.n_experts if self.shape.n_experts else 0
        fill = min(kv.n_ctx, DECODE_FILL)
        reads = [0.0] * (len(p.gpus) + 1)  # the last entry: the CPU
        chosen = set(p.gpu_expert_layers)
        remote = p.layer_remote or (-1,) * len(p.layer_gpu)
        layer_reads = [0.0] * len(p.layer_gpu)
        for i, gi in enumerate(p.layer_gpu):
            cells = kv.swa_cells if kv.swa_layers[i] else kv.global_cells
            layer_reads[i] = c.dense[i] + kv.per_layer[i] * min(fill, cells) / cells
            if remote[i] >= 0:  # a worker's layer: its experts are there too
                layer_reads[i] += c.experts[i] * frac
                continue
            reads[gi] += layer_reads[i]
            reads[gi if i in chosen else -1] += c.experts[i] * frac
        if not p.output_remote:
            reads[p.output_gpu] += c.output_bytes + c.tied_output
        seconds = self.network(trial, layer_reads).seconds if self.remote else 0.0
        for gi, d in enumerate(self.gpus[: len(p.gpus)]):
            seconds += reads[gi] / (gpu_bandwidth(d.description, d.backend)[0] * 1e9)
        cpu_read = reads[-1]
        if trial.disk:
            on_disk = cpu_read * trial.disk / max(p.cpu.weights + p.cpu.experts, 1)
            seconds += on_disk / (DISK_GBPS * 1e9)
            cpu_read -= on_disk
        seconds += cpu_read / (self.cpu_gbps() * 1e9) + DECODE_OVERHEAD_S
        return (1 / seconds if seconds else 0.0), reads[:-1], reads[-1]

    def network(self, trial: Trial, layer_reads: list[float] | None = None) -> NetworkCost:
        """What the workers' layers cost a token (their reads and the network)."""
        if layer_reads is None:
            frac = self.shape.n_experts_used / self.shape.n_experts if self.shape.n_experts else 0
            layer_reads = [
                d + e * frac for d, e in zip(self.costs.dense, self.costs.experts, strict=True)
            ]
        p, s = trial.placement, self.shape
        return network_cost(p, self.costs, layer_reads, self.remote, s.n_embd, s.n_vocab)

    def cpu_gbps(self) -> float:
        """Effective GB/s of the CPU side."""
        return cpu_bandwidth(self.gpus[0].description if self.unified else None)

    def all_on_gpu(self, p: Placement) -> bool:
        """Whether every layer and every routed expert of ``p`` is on a GPU."""
        return p.n_gpu_layers == self.shape.n_layers + 1 and not p.cpu_expert_layers

    def wired_limit_advice(self, trial: Trial) -> int | None:
        """Apple: the iogpu.wired_limit_mb that would put the whole model on the GPU."""
        if not self.unified or not trial.fits or self.all_on_gpu(trial.placement):
            return None
        limit = self.hw.ram_total - self.wishes.os_reserve_bytes
        if limit <= self.capacities[0]:
            return None
        raised = Budgets((limit - margin(limit, self.wishes),), self.budgets.ram, self.budgets.pool)
        other = self.trial(trial.kv.n_ctx, raised)
        return limit // MiB if other.fits and self.all_on_gpu(other.placement) else None

    def threads(self) -> int:
        """Threads for llama.cpp: every core but one for the app on bigger CPUs."""
        cores = max(self.hw.cpu_cores, 1)
        return cores - 1 if cores > 4 else cores


def kv_alternatives(pl: PlanSearch, trial: Trial) -> tuple[tuple[KVType, int], ...]:
    """When the wished context does not fit: the largest that fits with smaller KV types."""
    wishes = pl.wishes
    if trial.fits or wishes.n_ctx is None:
        return ()
    out = []
    for kv_type in (KVType.Q8_0, KVType.Q4_0):
        if kv_type is pl.kv_type or pl.kv_type is KVType.Q4_0:
            continue
        other = PlanSearch(
            pl.info,
            pl.hw,
            dataclasses.replace(wishes, kv_type=kv_type),
            (pl.shape, pl.costs),
            pl.workers,
        )
        limit = min(wishes.n_ctx, pl.shape.context_length or wishes.n_ctx)
        out.append((kv_type, other.max_ctx(limit)))
    return tuple(out)
