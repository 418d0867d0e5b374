"""Layers on other machines' devices (``herd worker``, llama.cpp's RPC backend).

llama.cpp gives the first offloaded layers to the RPC devices and the last ones to the
local GPUs (its device order: workers first), so the rule here runs backwards from the
local GPUs' first layer: each worker device, the last in order first, takes whole
layers, routed experts included, as many as fit its budget. Keeping a layer's experts
with its attention means a token crosses the network only where the layers change
device: one hidden state out and one back per worker device, however many experts it
uses. A worker's GPU is always worth it (faster than this machine's CPU); a worker's
CPU reads no faster than this one's and adds the network, so it takes only what this
machine's RAM cannot hold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.hardware.probe import Backend
from app.core.hardware.workers import Worker, WorkerDevice
from app.core.plan.bandwidth import CPU_EFFICIENCY, DEFAULT_CPU_GBPS, gpu_bandwidth
from app.core.plan.placement import Budgets, Bytes, LayerCosts, Placement

# Per token and worker device, besides the hidden states: llama.cpp's RPC client sends the
# device's part of the compute graph with every token (296 bytes per tensor, a layer's
# weights and intermediate results among them), and the commands around it. Measured on
# loopback by bench/rpc_overhead.py: 19.5-20 KB per layer on a tiny and a ~1 GB Llama 4.
GRAPH_BYTES_PER_LAYER = 19_500
PROTOCOL_BYTES = 2048
DEFAULT_RTT_S = 0.0005  # a LAN, when the link was not measured
DEFAULT_BYTES_PER_S = 117e6  # gigabit Ethernet, when the link was not measured


@dataclass(frozen=True, slots=True)
class RemoteDevice:
    """One device of a worker, as the planner uses it."""

    worker: Worker
    device: WorkerDevice

    @property
    def label(self) -> str:
        """llama.cpp's buffer name: ``RPC0[10.0.0.2:50052]``."""
        return self.worker.device_label(self.device)

    @property
    def is_cpu(self) -> bool:
        """Whether the worker serves its CPU (no faster than ours, plus the network)."""
        return self.device.kind == "cpu"

    def gbps(self) -> float:
        """Effective GB/s of the device, as the speed prediction uses it."""
        if self.is_cpu:
            return DEFAULT_CPU_GBPS * CPU_EFFICIENCY
        backend = Backend.METAL if self.device.name.startswith("Metal") else Backend.CUDA
        return gpu_bandwidth(self.device.description, backend)[0]


def remote_devices(workers: Sequence[Worker]) -> tuple[RemoteDevice, ...]:
    """Every worker's devices in the order the load gives them to llama.cpp.

    The workers' CPUs first, then their GPUs (each in the order given), so that, filled
    from the local GPUs backwards, the workers' GPUs take layers first and their CPUs
    only what is left.
    """
    devices = [RemoteDevice(w, d) for w in workers for d in w.devices]
    return tuple(sorted(devices, key=lambda d: not d.is_cpu))


def spread(
    p: Placement,
    costs: LayerCosts,
    kv: tuple[int, ...],
    budgets: Budgets,
    devices: Sequence[RemoteDevice],
    compute: int,
) -> Placement:
    """``p`` with the layers before the local GPUs' moved onto the workers' devices."""
    n = len(costs.dense)
    if not devices or not budgets.remote:
        return p
    first_local = min((i for i, g in enumerate(p.layer_gpu) if g >= 0), default=n)
    output = costs.output_bytes + costs.tied_output
    output_remote = False
    layer_remote = [-1] * n
    loads = [Bytes() for _ in devices]
    over = p.ram_over
    i = first_local - 1
    for r in reversed(range(len(devices))):
        with_output = not p.gpus and i == n - 1  # no local GPU: the output goes with layer n-1
        room = budgets.remote[r] - compute - (output if with_output else 0)
        weights = experts = kv_bytes = 0
        while i >= 0 and not (devices[r].is_cpu and over <= 0):
            cost = costs.dense[i] + costs.experts[i] + kv[i]
            if cost > room:
                break
            room -= cost
            over -= cost
            weights, experts, kv_bytes = (
                weights + costs.dense[i],
                experts + costs.experts[i],
                kv_bytes + kv[i],
            )
            layer_remote[i] = r
            i -= 1
        if weights or experts:
            if with_output:
                output_remote = True
                weights += output
                over -= costs.output_bytes
            loads[r] = Bytes(weights, experts, kv_bytes, compute)
    moved = [j for j in range(n) if layer_remote[j] >= 0]
    if not moved:
        return p
    cpu = Bytes(
        p.cpu.weights
        - sum(costs.dense[j] for j in moved)
        - (costs.output_bytes if output_remote else 0),
        p.cpu.experts - sum(costs.experts[j] for j in moved if j in p.cpu_expert_layers),
        p.cpu.kv - sum(kv[j] for j in moved),
        p.cpu.compute,
    )
    if budgets.pool is not None:
        over = sum(b.total for b in p.gpus) + cpu.total - budgets.pool
    else:
        over = cpu.total - budgets.ram
    on_cpu = sum(1 for j in range(n) if p.layer_gpu[j] < 0 and layer_remote[j] < 0)
    return dataclasses.replace(
        p,
        n_gpu_layers=n + 1 - on_cpu,
        cpu_expert_layers=tuple(j for j in p.cpu_expert_layers if layer_remote[j] < 0),
        cpu=cpu,
        ram_over=over,
        layer_remote=tuple(layer_remote),
        remotes=tuple(loads),
        output_remote=output_remote,
    )


def split(p: Placement, devices: Sequence[RemoteDevice]) -> tuple[float, ...]:
    """llama.cpp's ``tensor_split``: layers per device, workers' devices then local GPUs.

    llama.cpp splits the offloaded layers and the output by the running sums of these
    shares, so the output counts as one more layer of the device that holds it (the last
    with any layers); then each layer lands exactly where the plan put it.
    """
    counts = [float(sum(1 for r in p.layer_remote if r == k)) for k in range(len(devices))]
    counts += [float(sum(1 for g in p.layer_gpu if g == gi)) for gi in range(len(p.gpus))]
    last = max((k for k, c in enumerate(counts) if c), default=-1)
    if last >= 0:
        counts[last] += 1
    return tuple(counts)


def servers(p: Placement, devices: Sequence[RemoteDevice]) -> tuple[str, ...]:
    """The endpoints of the workers with any layer, in order (the load connects to these)."""
    used = {devices[r].worker.endpoint for r in p.layer_remote if r >= 0}
    return tuple(dict.fromkeys(d.worker.endpoint for d in devices if d.worker.endpoint in used))


def device_list(devices: Sequence[RemoteDevice], used: Sequence[str]) -> tuple[str, ...]:
    """``HOST:PORT#N`` for each device of the ``used`` workers, in the plan's order.

    What :func:`app.core.engine.llama_devices.device_array` gives llama.cpp, in the
    order of ``tensor_split``.
    """
    return tuple(
        f"{d.worker.endpoint}#{d.device.index}" for d in devices if d.worker.endpoint in used
    )


@dataclass(frozen=True, slots=True)
class NetworkCost:
    """Per token: bytes each used worker device reads, and the network's share."""

    reads: tuple[float, ...]  # per worker device: weights and KV cache read per token
    seconds: float  # the devices' reading plus the network's time
    network_bytes: float  # hidden states, logits and RPC commands over the network
    network_seconds: float
    hops: int  # worker devices a token passes through


def network_cost(
    p: Placement,
    costs: LayerCosts,
    layer_reads: Sequence[float],
    devices: Sequence[RemoteDevice],
    n_embd: int,
    n_vocab: int,
) -> NetworkCost:
    """What the workers' layers cost a token: their reads, and the network.

    ``layer_reads``: bytes a token reads in each layer (dense, KV, its share of experts).
    Each worker device with layers gets a hidden state (f32) and sends one back, with a
    round trip (llama.cpp waits for the result), and receives its part of the graph; the
    output on a worker sends the logits.
    """
    reads = [0.0] * len(devices)
    for i, r in enumerate(p.layer_remote):
        if r >= 0:
            reads[r] += layer_reads[i]
    seconds = net_bytes = net_seconds = 0.0
    hops = 0
    used = [k for k, d in enumerate(devices) if any(r == k for r in p.layer_remote)]
    last = used[-1] if used else -1
    for k in used:
        d = devices[k]
        if p.output_remote and k == last:
            reads[k] += costs.output_bytes + costs.tied_output
        rtt = d.worker.rtt_s or DEFAULT_RTT_S
        rate = d.worker.bytes_per_s or DEFAULT_BYTES_PER_S
        graph = GRAPH_BYTES_PER_LAYER * sum(1 for r in p.layer_remote if r == k)
        sent = 2 * n_embd * 4 + graph + PROTOCOL_BYTES
        sent += n_vocab * 4 if p.output_remote and k == last else 0
        net_bytes += sent
        net_seconds += rtt + sent / rate
        seconds += reads[k] / (d.gbps() * 1e9)
        hops += 1
    return NetworkCost(tuple(reads), seconds + net_seconds, net_bytes, net_seconds, hops)
