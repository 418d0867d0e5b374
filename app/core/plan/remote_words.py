"""The planner's words about workers: which layers each one holds, and what the network costs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.plan.remote import NetworkCost
from app.core.plan.words import layer_list, size

if TYPE_CHECKING:
    from app.core.plan.search import PlanSearch, Trial


def reasons(pl: PlanSearch, trial: Trial, network: NetworkCost) -> tuple[str, ...]:
    """One sentence per worker device, and one for the network (none without workers)."""
    if not pl.remote:
        return ()
    p = trial.placement
    out = []
    remote = p.layer_remote or (-1,) * len(p.layer_gpu)
    for k, d in enumerate(pl.remote):
        layers = [i for i, r in enumerate(remote) if r == k]
        where = f"{d.label} ({d.device.name}, {d.device.description}, on {d.worker.host})"
        if not layers:
            why = (
                "this machine's RAM holds the rest, and a worker's CPU is no faster than ours"
                if d.is_cpu
                else "nothing is left for it, or no whole layer fits its budget"
            )
            out.append(f"Worker device {where}: unused ({why}).")
            continue
        b = p.remotes[k]
        output = " and the output layer" if p.output_remote and k == max(remote) else ""
        out.append(
            f"Worker device {where}: layers {layer_list(layers)}{output} with their routed "
            f"experts ({size(b.weights + b.experts)}) and KV cache ({size(b.kv)}); whole "
            "layers, so a token's hidden state crosses the network once each way. It reads "
            f"{size(network.reads[k])} per token (~{d.gbps():.0f} GB/s effective)."
        )
    if network.hops:
        links = "; ".join(
            f"{w.endpoint}: {w.rtt_s * 1000:.2f} ms round trip, {w.bytes_per_s / 1e6:,.0f} MB/s"
            if w.bytes_per_s
            else f"{w.endpoint}: not measured (a LAN assumed)"
            for w in pl.workers
        )
        out.append(
            f"Network: a token passes {network.hops} worker device"
            f"{'s' if network.hops != 1 else ''}, about {network.network_bytes / 1024:,.1f} KiB "
            f"and {network.network_seconds * 1000:.2f} ms per token (hidden states, and the "
            f"part of the compute graph llama.cpp sends each device; {links}); the predicted "
            "speed includes it."
        )
    return tuple(out)
