"""Where each part of a model goes for one context size: the planner's inner step.

llama.cpp offloads the last ``n_gpu_layers - 1`` repeating layers plus the output layer to
the GPUs (the token embeddings always stay on the CPU); a layer's KV cache lives with the
layer. Tensor overrides then keep the routed experts of chosen layers in CPU memory. The
rule here: whole layers (attention, norms, shared expert, dense FFN) and their KV cache go
to the GPU first, because every token reads all of them; then the routed experts of as
many MoE layers as fit (a token reads only 1 of 16 or 1 of 128 of those), last layers
first, so the CPU keeps the first ones as ``--n-cpu-moe`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from app.core.gguf.info import GGUFInfo, TensorGroup


@dataclass(frozen=True, slots=True)
class LayerCosts:
    """Weight bytes of a model by where llama.cpp can put them."""

    dense: tuple[int, ...]  # per layer: attention, norms, router, shared expert, dense FFN
    experts: tuple[int, ...]  # per layer: routed experts (0 in a dense layer)
    input_bytes: int  # token embeddings: always in CPU memory
    output_bytes: int  # output norm and projection (with the last layer's device)
    tied_output: int  # token_embd bytes loaded again as the output on a GPU (tied models)

    @property
    def moe_layers(self) -> tuple[int, ...]:
        """Layers with routed experts."""
        return tuple(i for i, b in enumerate(self.experts) if b)

    @property
    def total(self) -> int:
        """Bytes of all tensors (the file's data)."""
        return sum(self.dense) + sum(self.experts) + self.input_bytes + self.output_bytes


def layer_costs(info: GGUFInfo) -> LayerCosts:
    """Sum ``info``'s tensors into per-layer dense and expert bytes."""
    n = info.n_layers
    dense, experts = [0] * n, [0] * n
    input_bytes = output_bytes = 0
    has_output = False
    for t in info.tensors:
        layer = t.layer
        if layer is not None and layer < n:
            if t.group is TensorGroup.ROUTED_EXPERTS:
                experts[layer] += t.n_bytes
            else:
                dense[layer] += t.n_bytes
        elif t.name.startswith("token_embd."):
            input_bytes += t.n_bytes
        else:
            has_output = has_output or t.name.startswith("output.")
            output_bytes += t.n_bytes
    tied = 0 if has_output else input_bytes
    return LayerCosts(tuple(dense), tuple(experts), input_bytes, output_bytes, tied)


@dataclass(frozen=True, slots=True)
class Bytes:
    """Planned bytes on one device."""

    weights: int = 0
    experts: int = 0
    kv: int = 0
    compute: int = 0

    @property
    def total(self) -> int:
        """All four together."""
        return self.weights + self.experts + self.kv + self.compute


@dataclass(frozen=True, slots=True)
class Budgets:
    """Usable bytes per GPU (free memory less a margin) and in RAM."""

    gpus: tuple[int, ...]
    ram: int
    pool: int | None = None  # unified memory: GPU and CPU parts together must fit this
    remote: tuple[int, ...] = ()  # per device of the workers (app.core.plan.remote)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where everything goes for one context size."""

    n_gpu_layers: int
    layer_gpu: tuple[int, ...]  # per layer: GPU index, or -1 for the CPU
    output_gpu: int  # -1: the CPU
    gpu_expert_layers: tuple[int, ...]
    cpu_expert_layers: tuple[int, ...]
    max_gpu_expert_layers: int  # how many MoE layers' experts fit on the GPUs at most
    gpus: tuple[Bytes, ...]
    cpu: Bytes
    ram_over: int  # bytes the CPU side (or the unified pool) needs beyond its budget
    pinned_short: int  # pinned expert layers that did not fit on the GPUs
    layer_remote: tuple[int, ...] = ()  # per layer: a worker's device index, or -1
    remotes: tuple[Bytes, ...] = ()  # per device of the workers, whole layers with experts
    output_remote: bool = False  # no local GPU: the output is on the last worker device used

    @property
    def fits(self) -> bool:
        """Whether every device stays within its budget."""
        return self.ram_over <= 0 and self.pinned_short <= 0


def _split(layers: range, budgets: tuple[int, ...]) -> list[range]:
    """Contiguous runs of ``layers`` per GPU, sized in proportion to the GPUs' budgets."""
    if len(budgets) == 1:
        return [layers]
    total = sum(max(b, 0) for b in budgets) or 1
    bounds = [round(len(layers) * c / total) for c in accumulate(max(b, 0) for b in budgets)]
    starts = [0, *bounds[:-1]]
    return [range(layers.start + a, layers.start + b) for a, b in zip(starts, bounds, strict=True)]


def place(
    costs: LayerCosts,
    kv: tuple[int, ...],
    budgets: Budgets,
    compute_gpu: int,
    compute_host: int,
    compute_cpu: int,
    pinned: int | None = None,
    limit: int | None = None,
) -> Placement:
    """Place a model whose layers hold ``kv`` cache bytes each.

    Args:
        costs: The model's weight bytes.
        kv: KV cache bytes per layer for the context being planned.
        budgets: Usable bytes per GPU and in RAM.
        compute_gpu: Compute buffer of a GPU that runs layers.
        compute_host: Host compute buffer when GPUs run the graph.
        compute_cpu: Compute buffer when the CPU runs the whole graph.
        pinned: How many MoE layers' routed experts must go to the GPUs; None: all that fit.
        limit: At most this many repeating layers on the GPUs (None: as many as fit); the
            workers' planner (:mod:`app.core.plan.remote`) tries several.
    """
    n = len(costs.dense)
    moe = costs.moe_layers
    if not budgets.gpus:
        cpu = Bytes(
            costs.input_bytes + costs.output_bytes + sum(costs.dense),
            sum(costs.experts),
            sum(kv),
            compute_cpu,
        )
        short = pinned or 0
        return Placement(0, (-1,) * n, -1, (), moe, 0, (), cpu, cpu.total - budgets.ram, short)
    base: list[int] = []
    runs: list[range] = []
    pre = [0, *accumulate(d + k for d, k in zip(costs.dense, kv, strict=True))]
    last = len(budgets.gpus) - 1
    for g in range(n + 1 if limit is None else min(limit + 1, n + 1), 0, -1):
        runs = _split(range(n + 1 - g, n), budgets.gpus)
        base = [
            pre[r.stop] - pre[r.start] + (compute_gpu if len(r) or gi == last else 0)
            for gi, r in enumerate(runs)
        ]
        base[-1] += costs.output_bytes + costs.tied_output
        if all(b <= cap for b, cap in zip(base, budgets.gpus, strict=True)):
            break
    else:  # not even the output layer fits on a GPU
        return place(costs, kv, Budgets((), budgets.ram, budgets.pool), 0, 0, compute_cpu, pinned)
    layer_gpu = [-1] * n
    for gi, run in enumerate(runs):
        for i in run:
            layer_gpu[i] = gi
    room = [cap - b for cap, b in zip(budgets.gpus, base, strict=True)]
    on_gpu_experts: list[int] = []
    for i in reversed(moe):  # last layers first; a layer that does not fit is skipped
        gi = layer_gpu[i]
        if gi >= 0 and costs.experts[i] <= room[gi]:
            room[gi] -= costs.experts[i]
            on_gpu_experts.append(i)
    max_experts = len(on_gpu_experts)
    short = 0
    if pinned is not None:
        short = max(pinned - max_experts, 0)
        on_gpu_experts = on_gpu_experts[:pinned]
    chosen = set(on_gpu_experts)
    gpus = []
    for gi, run in enumerate(runs):
        weights = sum(costs.dense[i] for i in run)
        if gi == len(runs) - 1:
            weights += costs.output_bytes + costs.tied_output
        experts = sum(costs.experts[i] for i in run if i in chosen)
        compute = compute_gpu if len(run) or gi == len(runs) - 1 else 0
        gpus.append(Bytes(weights, experts, sum(kv[i] for i in run), compute))
    cpu_layers = [i for i in range(n) if layer_gpu[i] < 0]
    cpu = Bytes(
        costs.input_bytes + sum(costs.dense[i] for i in cpu_layers),
        sum(costs.experts[i] for i in moe if i not in chosen),
        sum(kv[i] for i in cpu_layers),
        compute_host + (compute_cpu if cpu_layers else 0),
    )
    if budgets.pool is not None:
        over = sum(b.total for b in gpus) + cpu.total - budgets.pool
    else:
        over = cpu.total - budgets.ram
    return Placement(
        n_gpu_layers=n + 1 - (len(cpu_layers)),
        layer_gpu=tuple(layer_gpu),
        output_gpu=len(runs) - 1,
        gpu_expert_layers=tuple(sorted(chosen)),
        cpu_expert_layers=tuple(i for i in moe if i not in chosen),
        max_gpu_expert_layers=max_experts,
        gpus=tuple(gpus),
        cpu=cpu,
        ram_over=over,
        pinned_short=short,
    )
