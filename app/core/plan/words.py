"""The planner's words: a plain-language reason for each choice, and the text memory map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.plan.kv_estimate import KVEstimate, ModelShape
from app.core.plan.placement import LayerCosts, Placement
from app.core.settings import KVType
from app.core.units import size_text

if TYPE_CHECKING:
    from app.core.plan.result import DevicePlan, Plan

BAR = 40  # characters of a memory bar


def size(n: float) -> str:
    """Bytes as Herd writes every size (:func:`app.core.units.size_text`)."""
    return size_text(n)


def layer_list(layers: tuple[int, ...] | list[int]) -> str:
    """Layer indices compactly: ``0-40``, ``1-47 (odd)``, ``0-3, 9, 12-14``."""
    xs = sorted(layers)
    if not xs:
        return "none"
    if len(xs) > 2 and all(b - a == 2 for a, b in zip(xs, xs[1:], strict=False)):
        return f"{xs[0]}-{xs[-1]} ({'odd' if xs[0] % 2 else 'even'})"
    runs: list[list[int]] = []
    for x in xs:
        if runs and x == runs[-1][-1] + 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the reasons talk about (built by the planner)."""

    shape: ModelShape
    costs: LayerCosts
    wishes_ctx: int | None
    trained_ctx: int
    auto_cap: int
    kv: KVEstimate
    kv_full: int
    kv_type: KVType
    flash_attn: bool
    placement: Placement
    devices: tuple[DevicePlan, ...]
    unified: bool
    fits: bool
    max_ctx: int
    disk: int
    use_mmap: bool
    overrides: bool
    threads: int
    cores: int  # physical cores of the machine planned for
    n_ubatch: int
    tok_s: float
    gpu_reads: tuple[float, ...]
    cpu_read: float
    advice_mb: int | None
    pinned: int | None
    kv_alternatives: tuple[tuple[KVType, int], ...]
    margins: tuple[float, int, int]  # fraction, floor, bytes kept free in RAM


def reasons(f: Facts) -> tuple[str, ...]:
    """One plain-language sentence or two per choice, the verdict first."""
    out = [_context(f), _kv(f)]
    out.append(
        "Flash attention on: it keeps the compute buffer small at long contexts, and a "
        "quantized KV cache needs it."
        if f.flash_attn
        else "Flash attention off, as asked: the compute buffer grows with the context."
    )
    out += _placement(f)
    out += _memory(f)
    out.append(_mmap(f))
    gpu_only = f.placement.n_gpu_layers and not f.placement.cpu_expert_layers
    cores = max(f.cores, 1)
    rule = (
        "every physical core but one, which is left for the app"
        if f.threads < cores
        else "every physical core (with 4 or fewer, none is held back for the app)"
    )
    out.append(
        f"{f.threads} CPU threads: {rule}"
        + (" (the GPU does the work; threads matter little)." if gpu_only else ".")
        if f.threads > 1
        else "1 CPU thread."
    )
    gpu = [d for d in f.devices if d.kind == "gpu"]
    where = gpu[-1] if gpu else f.devices[-1]
    out.append(
        f"Micro-batches of {f.n_ubatch} tokens: {size(where.compute)} of compute buffer on "
        f"{where.name}; larger ones read long prompts faster but take more memory."
    )
    if f.fits:  # a plan that cannot load has no speed
        out.append(_speed(f))
    return tuple(out)


def _context(f: Facts) -> str:
    n = f.kv.n_ctx
    if f.fits:
        if f.wishes_ctx is not None:
            note = " (the model's trained maximum)" if f.wishes_ctx > f.trained_ctx else ""
            return f"Context: {n:,} tokens, as asked{note}; up to {f.max_ctx:,} would fit."
        if n >= min(f.auto_cap, f.trained_ctx):
            more = f"; up to {f.max_ctx:,} fit if you ask" if f.max_ctx > n else ""
            return (
                f"Context: {n:,} tokens, the most Herd picks on its own (the model was trained "
                f"for {f.trained_ctx:,}{more})."
            )
        return f"Context: {n:,} tokens, the largest that fits with a {f.kv_type} KV cache."
    p = f.placement
    if p.pinned_short > 0:
        return (
            f"Does not fit: you pinned the routed experts of {f.pinned} MoE layers on the GPU, "
            f"but only {p.max_gpu_expert_layers} fit at {n:,} tokens of context."
        )
    over = size(p.ram_over)
    if f.max_ctx == 0:
        return (
            f"Does not fit: the weights alone ({size(f.costs.total)}) are more than the free RAM "
            f"and VRAM hold; with {n:,} tokens of context the plan needs {over} more. Free "
            "memory or use a smaller quantization."
        )
    alts = "".join(f"; with a {t} KV cache up to {c:,}" for t, c in f.kv_alternatives if c)
    return (
        f"Does not fit: {n:,} tokens of context need {over} more than the free memory. The "
        f"largest context that fits is {f.max_ctx:,} tokens{alts}."
    )


def _kv(f: Facts) -> str:
    kv, t = f.kv, f.kv_type
    n_swa = sum(kv.swa_layers)
    head = f"KV cache ({t}): {size(kv.total)} for {kv.n_ctx:,} tokens"
    if not n_swa:
        return f"{head} over {len(kv.per_layer)} layers."
    n_global = len(kv.per_layer) - n_swa
    text = (
        f"{head}: {n_global} layers attend globally and keep every token "
        f"({size(kv.global_bytes)}); {n_swa} windowed layers keep {kv.swa_cells:,} cells each "
        f"({size(kv.swa_bytes)})"
    )
    if f.kv_full > kv.total:
        text += (
            f" because swa_full is off. With swa_full on (llama-cpp-python's default) it "
            f"would take {size(f.kv_full)}"
        )
    return text + "."


def _placement(f: Facts) -> list[str]:
    p, c = f.placement, f.costs
    gpus = [d for d in f.devices if d.kind == "gpu"]
    n = len(c.dense)
    remote = sum(1 for r in p.layer_remote if r >= 0)  # on workers (see remote_words)
    if not gpus and remote:
        return [f"No GPU here: {remote} of {n} layers go to the workers, the rest run from RAM."]
    if not gpus:
        return ["No GPU in the plan: every layer, the KV cache and the compute buffer are in RAM."]
    names = " and ".join(f"{d.name} ({d.description})" for d in gpus)
    dense = sum(d.weights for d in gpus)
    if remote:
        local = sum(1 for g in p.layer_gpu if g >= 0)
        out = [
            f"The output and the last {local} of {n} layers go to {names} with their KV "
            f"cache; {remote} layers before them go to the workers, and the first "
            f"{n - local - remote} run on the CPU from RAM."
        ]
    elif p.n_gpu_layers == n + 1:
        out = [
            f"All {n} layers and the output go to {names} with their KV cache: attention, "
            f"norms, shared experts and dense FFNs ({size(dense)}) are read for every token, "
            "so they go first."
        ]
    else:
        on_cpu = n + 1 - p.n_gpu_layers
        out = [
            f"Only the output and the last {p.n_gpu_layers - 1} of {n} layers fit on {names} "
            f"with their KV cache; the first {on_cpu} layers run on the CPU from RAM."
        ]
    moe = c.moe_layers
    if not moe:
        return out
    g, cpu = len(p.gpu_expert_layers), p.cpu_expert_layers
    each = size(max(c.experts))
    used = f"{f.shape.n_experts_used} of {f.shape.n_experts}"
    if not cpu:
        out.append(f"The routed experts of all {len(moe)} MoE layers fit on the GPU too.")
    else:
        pinned = ""
        if f.pinned is not None:  # the same count as the dialog's slider shows
            pinned = " (as pinned)" if f.pinned == g else f" (you pinned {f.pinned}; only {g} fit)"
        out.append(
            f"Routed experts: {g} of {len(moe)} MoE layers on the GPU{pinned}, up to {each} "
            f"each; the experts of layers {layer_list(cpu)} stay in CPU memory "
            f"({size(sum(c.experts[i] for i in cpu))}). A token uses {used} experts per "
            f"layer, so the CPU reads only {size(f.cpu_read)} per token."
        )
    return out


def _memory(f: Facts) -> list[str]:
    fraction, floor, ram = f.margins
    gpus = [d for d in f.devices if d.kind == "gpu"]
    cpu = f.devices[-1]
    kept = "".join(f"{size(d.capacity - d.budget)} on {d.name} and " for d in gpus)
    out = [
        f"Kept free: {kept}{size(ram)} of the available RAM, for the system and other apps "
        f"({fraction:.0%} or {size(floor)}, whichever is more)."
    ]
    if f.unified and gpus:
        g = gpus[0]
        out.append(
            f"Unified memory: GPU and CPU share {size(cpu.capacity)}; the GPU may use at most "
            f"{size(g.capacity)} (its working-set limit) and the whole plan "
            f"({size(g.total + cpu.total)}) comes out of the same free RAM."
        )
        if f.advice_mb:
            out.append(
                f"Run `sudo sysctl iogpu.wired_limit_mb={f.advice_mb}` to let the GPU use "
                f"{size(f.advice_mb << 20)} (leaving the rest to macOS) and the whole model "
                "runs on the GPU, faster; the setting lasts until a restart."
            )
    return out


def _mmap(f: Facts) -> str:
    if f.disk:
        return (
            f"WARNING: {size(f.disk)} of weights do not fit in free RAM and will be read from "
            "disk through mmap while the model runs (you allowed this). Expect replies to "
            "be many times slower; free memory or use a smaller quantization."
        )
    if f.overrides:
        return (
            "mmap off: the CPU-side experts are read into RAM once, which llama.cpp advises "
            "with tensor overrides; mlock off (it needs raised OS limits)."
        )
    if f.unified:
        return "mmap on: Metal uses the mapped file directly, without a second copy; mlock off."
    return (
        "mmap on: the weights load straight from the file cache; mlock off (it needs raised "
        "OS limits and only stops swapping)."
    )


def _speed(f: Facts) -> str:
    parts = [
        f"{size(r)} from {d.name} (~{d.bandwidth_gbps:.0f} GB/s effective)"
        for d, r in zip([d for d in f.devices if d.kind == "gpu"], f.gpu_reads, strict=False)
    ]
    cpu = f.devices[-1]
    if f.cpu_read >= 1 << 20:
        parts.append(f"{size(f.cpu_read)} from RAM (~{cpu.bandwidth_gbps:.0f} GB/s)")
    tail = "; reading from disk slows it further" if f.disk else ""
    return (
        f"Predicted decode speed: about {f.tok_s:.1f} tokens/s with 4K tokens of context, "
        f"reading per token {' and '.join(parts)}{tail}."
    )


def _bar(d: DevicePlan) -> str:
    cap = max(d.capacity, 1)
    cells = ""
    for part, mark in ((d.weights, "W"), (d.experts, "E"), (d.kv, "K"), (d.compute, "C")):
        cells += mark * round(BAR * part / cap)
    cells = cells[:BAR]
    return f"[{cells}{'.' * (BAR - len(cells))}]"


def describe(plan: Plan) -> str:
    """The plan as text: settings, a memory map per device, the reasons."""
    lines = [
        f"{plan.model}: {'fits' if plan.fits else 'DOES NOT FIT'}",
        f"  context {plan.n_ctx:,} (largest that fits: {plan.max_ctx:,}), KV {plan.type_k}, "
        f"flash attention {'on' if plan.flash_attn else 'off'}, swa_full off",
        f"  n_gpu_layers {plan.n_gpu_layers}, expert layers on GPU "
        f"{len(plan.gpu_expert_layers)}/{plan.n_moe_layers}, "
        f"CPU expert layers: {layer_list(plan.cpu_expert_layers)}",
    ]
    lines += [f"  override {rx} -> {buft}" for rx, buft in plan.tensor_overrides]
    lines.append(
        f"  batch {plan.n_batch}/{plan.n_ubatch}, mmap {'on' if plan.use_mmap else 'off'}, "
        f"mlock off, threads {plan.n_threads}, "
        + (f"predicted {plan.predicted_decode_tok_s:.1f} tok/s" if plan.fits else "no prediction")
    )
    lines.append("Memory (W weights, E experts, K KV cache, C compute, . free)")
    for d in plan.devices:
        used = f"{size(d.total)} of {size(d.capacity)}"
        lines.append(f"  {d.name:<6} {_bar(d)} {used}  {d.description}")
        lines.append(
            f"         weights {size(d.weights)}, experts {size(d.experts)}, KV {size(d.kv)}, "
            f"compute {size(d.compute)}, budget {size(d.budget)}"
        )
    lines.append("Why")
    lines += [f"  - {r}" for r in plan.reasons]
    return "\n".join(lines)
