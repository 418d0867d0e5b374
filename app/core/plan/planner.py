"""The load planner: (model header, hardware, wishes) -> a Plan llama.cpp can load.

Pure and fast (a few ms): no I/O, no llama.cpp. It chooses the context size, KV type, the
layers and routed experts each device holds (as llama.cpp tensor overrides), batch sizes,
mmap and threads; projects the bytes per device (dense weights, experts, KV cache,
compute buffers) and a decode speed, and says why for each choice. The memory formulas
live in :mod:`app.core.plan.kv_estimate`, the placement rule in :mod:`app.core.plan.placement`,
the search over context sizes in :mod:`app.core.plan.search`, the wording in
:mod:`app.core.plan.words`.
"""

from __future__ import annotations

from app.core.errors import UnsupportedModelError
from app.core.gguf.info import GGUFInfo
from app.core.hardware.probe import Hardware
from app.core.hardware.workers import Worker
from app.core.plan import remote_words as remote_text
from app.core.plan import words as plan_text
from app.core.plan.bandwidth import gpu_bandwidth
from app.core.plan.kv_estimate import kv_cache
from app.core.plan.placement import Bytes, Placement
from app.core.plan.remote import device_list, servers, split
from app.core.plan.result import DevicePlan, Plan
from app.core.plan.search import (
    DEFAULT_MAX_AUTO_CTX,
    PlanSearch,
    Wishes,
    kv_alternatives,
    margin,
)

__all__ = ["DevicePlan", "Plan", "Wishes", "experts_pattern", "make_plan", "margin"]
# Plan and DevicePlan live in plan_result, which plan_text reads too; imported from here.

MIN_AUTO_CTX = 2048  # below this a chat has no room; an automatic plan that small does not fit


def experts_pattern(layers: tuple[int, ...] | list[int]) -> str:
    r"""One regex for the routed-expert tensors of ``layers``: ``blk\.([0-2])\.ffn_.*_exps``."""
    by_tens: dict[int, list[int]] = {}
    for n in sorted(set(layers)):
        by_tens.setdefault(n // 10, []).append(n % 10)
    alts = [f"{t or ''}{_digit_class(units)}" for t, units in by_tens.items()]
    return rf"blk\.({'|'.join(alts)})\.ffn_.*_exps"


def _digit_class(digits: list[int]) -> str:
    if len(digits) == 1:
        return str(digits[0])
    runs: list[list[int]] = []
    for d in digits:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = [f"{r[0]}-{r[-1]}" if len(r) > 2 else "".join(map(str, r)) for r in runs]
    return f"[{''.join(parts)}]"


def make_plan(
    info: GGUFInfo,
    hardware: Hardware,
    wishes: Wishes | None = None,
    workers: tuple[Worker, ...] = (),
) -> Plan:
    """Plan how to load ``info``'s model on ``hardware``, and on ``workers``' devices.

    Raises:
        UnsupportedModelError: the file has no transformer layers to place.
    """
    wishes = wishes or Wishes()
    if info.n_layers <= 0 or not info.tensors:
        raise UnsupportedModelError(
            f"{info.path.name} has no layers to place", "Open a chat model's GGUF file."
        )
    pl = PlanSearch(info, hardware, wishes, workers=workers)
    trained = pl.shape.context_length or DEFAULT_MAX_AUTO_CTX
    max_ctx = pl.max_ctx(trained)
    if wishes.n_ctx is not None:
        n_ctx = min(max(wishes.n_ctx, 1), trained)
    else:
        target = min(trained, wishes.max_auto_ctx)
        n_ctx = min(target, max_ctx) if max_ctx >= min(MIN_AUTO_CTX, target) else target
    trial = pl.trial(n_ctx)
    p = trial.placement
    tok_s, gpu_reads, cpu_read = pl.decode_tok_s(trial)
    overrides: tuple[tuple[str, str], ...] = ()
    on_gpu_layers = {i for i, g in enumerate(p.layer_gpu) if g >= 0}
    spilled = [i for i in p.cpu_expert_layers if i in on_gpu_layers]
    if spilled:
        overrides = ((experts_pattern(spilled), "CPU"),)
    use_mmap = bool(trial.disk) or not overrides or pl.unified
    devices = _devices(pl, p)
    split_: tuple[float, ...] = ()
    rpc_servers = servers(p, pl.remote)
    network = pl.network(trial)
    if rpc_servers:  # every device of the workers used, then the local GPUs
        used = [k for k, d in enumerate(pl.remote) if d.worker.endpoint in rpc_servers]
        shares = split(p, pl.remote)
        split_ = tuple(shares[k] for k in used) + shares[len(pl.remote) :]
    elif len(p.gpus) > 1:
        split_ = tuple(float(sum(1 for g in p.layer_gpu if g == gi)) for gi in range(len(p.gpus)))
    advice = pl.wired_limit_advice(trial)
    full_kv = kv_cache(pl.shape, n_ctx, pl.kv_type, pl.kv_type, wishes.n_ubatch, swa_full=True)
    facts = plan_text.Facts(
        shape=pl.shape,
        costs=pl.costs,
        wishes_ctx=wishes.n_ctx,
        trained_ctx=trained,
        auto_cap=wishes.max_auto_ctx,
        kv=trial.kv,
        kv_full=full_kv.total,
        kv_type=pl.kv_type,
        flash_attn=pl.flash_attn,
        placement=p,
        devices=devices,
        unified=pl.unified,
        fits=trial.fits,
        max_ctx=max_ctx,
        disk=trial.disk,
        use_mmap=use_mmap,
        overrides=bool(overrides),
        threads=pl.threads(),
        cores=hardware.cpu_cores,
        n_ubatch=wishes.n_ubatch,
        tok_s=tok_s,
        gpu_reads=tuple(gpu_reads),
        cpu_read=cpu_read,
        advice_mb=advice,
        pinned=wishes.gpu_expert_layers,
        kv_alternatives=kv_alternatives(pl, trial),
        margins=(
            wishes.safety_fraction,
            wishes.safety_min_bytes,
            margin(hardware.ram_total, wishes),
        ),
    )
    return Plan(
        model=info.path.name,
        fits=trial.fits,
        n_ctx=trial.kv.n_ctx,
        type_k=pl.kv_type,
        type_v=pl.kv_type,
        flash_attn=pl.flash_attn,
        swa_full=False,
        n_gpu_layers=p.n_gpu_layers,
        cpu_expert_layers=p.cpu_expert_layers,
        gpu_expert_layers=p.gpu_expert_layers,
        max_gpu_expert_layers=p.max_gpu_expert_layers,
        n_moe_layers=len(pl.costs.moe_layers),
        tensor_overrides=overrides,
        tensor_split=split_,
        n_batch=max(wishes.n_ubatch, 512),
        n_ubatch=wishes.n_ubatch,
        use_mmap=use_mmap,
        use_mlock=False,
        n_threads=pl.threads(),
        devices=devices,
        unified_memory=pl.unified,
        predicted_decode_tok_s=tok_s,
        max_ctx=max_ctx,
        kv_bytes=trial.kv.total,
        kv_full_bytes=full_kv.total,
        disk_bytes=trial.disk,
        wired_limit_advice_mb=advice,
        reasons=plan_text.reasons(facts) + remote_text.reasons(pl, trial, network),
        rpc_servers=rpc_servers,
        rpc_devices=device_list(pl.remote, rpc_servers),
        network_bytes_per_token=network.network_bytes,
        network_s_per_token=network.network_seconds,
    )


def _devices(pl: PlanSearch, p: Placement) -> tuple[DevicePlan, ...]:
    out = []
    for gi, b in enumerate(p.gpus):
        d = pl.gpus[gi]
        out.append(
            DevicePlan(
                name=d.name,
                kind="gpu",
                description=d.description,
                capacity=pl.capacities[gi],
                budget=pl.budgets.gpus[gi],
                weights=b.weights,
                experts=b.experts,
                kv=b.kv,
                compute=b.compute,
                bandwidth_gbps=gpu_bandwidth(d.description, d.backend)[0],
            )
        )
    for k, r in enumerate(pl.remote):
        load = p.remotes[k] if p.remotes else Bytes()
        out.append(
            DevicePlan(
                name=r.label,
                kind="remote",
                description=f"{r.device.name} {r.device.description}",
                capacity=r.device.total_bytes,
                budget=pl.budgets.remote[k],
                weights=load.weights,
                experts=load.experts,
                kv=load.kv,
                compute=load.compute,
                bandwidth_gbps=r.gbps(),
                host=r.worker.endpoint,
            )
        )
    c = p.cpu
    ram_budget = pl.budgets.ram - (sum(b.total for b in p.gpus) if pl.unified else 0)
    out.append(
        DevicePlan(
            name="CPU",
            kind="cpu",
            description=pl.hw.cpu_description or "CPU",
            capacity=pl.hw.ram_total,
            budget=max(ram_budget, 0),
            weights=c.weights,
            experts=c.experts,
            kv=c.kv,
            compute=c.compute,
            bandwidth_gbps=pl.cpu_gbps(),
        )
    )
    return tuple(out)
