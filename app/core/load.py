"""THE load job: a model path and its wishes -> header once -> devices -> plan -> engine.

Every load goes through here: the window's Load, the library, a dropped file, the model
restored at start, the Offload & Context dialog, ``herd chat`` and ``herd doctor``'s
benchmark are thin callers. In order it reads the GGUF header once, takes the hardware
(llama.cpp's device list, asked once per engine start, merged with the probe; or a
described machine), plans, refuses a plan that does not fit before anything is loaded,
loads with the plan's settings, and compares what llama.cpp applied with the plan.

Threads are the planner's choice on every load (:meth:`PlanSearch.threads`): the physical
cores, less one left for the app on CPUs with more than four; hyper-threads are not
counted, since decoding is bound by memory bandwidth and extra threads only contend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core import events as ev
from app.core.engine.rpc_watch import DEFAULT_STALL_S, RpcWatch
from app.core.errors import HerdError
from app.core.gguf.info import GGUFInfo, read_gguf, require_supported
from app.core.hardware.probe import Hardware, merge_engine_devices, probe_hardware
from app.core.hardware.workers import Worker, ask_workers
from app.core.jobs import CancelToken
from app.core.model_wishes import ModelWishes
from app.core.plan.planner import Plan, make_plan
from app.core.settings import LoadSettings

if TYPE_CHECKING:
    from app.core.engine.client import EngineClient

DIFF_TOLERANCE = 0.02  # a difference between plan and load over 2% is shown
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Planned:
    """The plan a load will use, and the engine settings derived from it."""

    plan: Plan
    settings: LoadSettings
    hardware: Hardware  # the machine it was planned for
    info: GGUFInfo  # the header, read once for the whole load (and the dialog after it)


@dataclass(frozen=True, slots=True)
class LoadRequest:
    """One load: which file, its wishes, and the app-wide settings the plan does not set."""

    path: Path
    wishes: ModelWishes = ModelWishes()
    base: LoadSettings = LoadSettings()  # the template choice, batch sizes, mlock
    hardware: Hardware | None = None  # a described machine; None: this one
    threads: int | None = None  # an explicit thread count (``herd chat --threads``)
    rpc: tuple[str, ...] = ()  # herd workers to ask and plan across (``--rpc``)
    workers: tuple[Worker, ...] | None = None  # recorded workers instead of asking them
    rpc_timeout_s: float = DEFAULT_STALL_S  # silence from an engine using workers: stop it


# The load job's stream: its plan first, then the engine's events.
LoadEvent = Planned | ev.EngineEvent


def settings_for(plan: Plan, request: LoadRequest) -> LoadSettings:
    """The engine settings of ``plan`` (the same for the window and ``herd chat``)."""
    settings = plan.to_load_settings(request.base)
    if request.threads:
        settings = dataclasses.replace(settings, n_threads=request.threads)
    return settings


def plan_for(
    info: GGUFInfo, hardware: Hardware, request: LoadRequest, workers: tuple[Worker, ...] = ()
) -> Planned:
    """Plan ``info`` on ``hardware`` (and ``workers``) with the request's wishes (pure)."""
    plan = make_plan(info, hardware, request.wishes.planner_wishes(), workers)
    return Planned(plan, settings_for(plan, request), hardware, info)


def workers_for(request: LoadRequest) -> tuple[tuple[Worker, ...], tuple[str, ...]]:
    """The request's workers: recorded, or asked now (about a second each).

    Those that do not answer are left out, with a sentence each.
    """
    if request.workers is not None:
        return request.workers, ()
    kept = tuple(dict.fromkeys(e.partition("#")[0] for e in request.base.rpc_servers))
    endpoints = request.rpc or kept  # the window keeps its Workers list in the settings
    return ask_workers(endpoints) if endpoints else ((), ())


def plan_on(client: EngineClient, info: GGUFInfo, request: LoadRequest) -> Planned:
    """Plan ``request`` on its described machine, or on this one as llama.cpp sees it.

    Raises:
        HerdError: the file cannot be planned (no layers).
    """
    workers, missing = workers_for(request)
    planned = plan_for(info, request.hardware or machine(client), request, workers)
    if not missing:
        return planned
    left_out = tuple(f"{m} Planned without it." for m in missing)
    plan = dataclasses.replace(planned.plan, reasons=planned.plan.reasons + left_out)
    return dataclasses.replace(planned, plan=plan)


def refusal(plan: Plan) -> ev.Failed:
    """Why a plan that does not fit is not loaded, in ``herd plan``'s words, with the fixes."""
    why = next((r for r in plan.reasons if r.startswith("Does not fit")), "")
    reason = why.removeprefix("Does not fit: ") or "it needs more memory than this machine has."
    return ev.Failed(
        f"{plan.model} does not fit this machine: {reason}",
        "Choose a smaller context or a q8_0 KV cache (Offload & Context, or --ctx/--kv), "
        "or a smaller quant of the model. Nothing was loaded.",
    )


def machine(client: EngineClient) -> Hardware:
    """This machine: the probe, with llama.cpp's own device list (asked once per start).

    Blocking (the probe may start ``nvidia-smi``): call it off the GUI thread.
    """
    hardware = probe_hardware()
    try:
        devices = client.devices()
    except HerdError:
        return hardware  # the engine cannot answer: plan with the probe alone
    return merge_engine_devices(hardware, devices)


def load_model(
    client: EngineClient, request: LoadRequest, cancel: CancelToken | None = None
) -> Iterator[LoadEvent]:
    """The load job: Planned, then the engine's Progress events, then Loaded or Failed."""
    try:
        info = read_gguf(request.path)
        require_supported(info)
    except HerdError as exc:
        yield ev.Failed(exc.user_message, exc.hint)
        return
    if not client.alive:
        client.start()
    try:
        planned = plan_on(client, info, request)
    except HerdError as exc:
        yield ev.Failed(exc.user_message, exc.hint)
        return
    yield planned
    if not planned.plan.fits:
        yield refusal(planned.plan)
        return
    servers = planned.plan.rpc_servers  # HOST:PORT of the workers it uses
    client.watch = RpcWatch(servers, request.rpc_timeout_s) if servers else None
    projector = request.wishes.projector or paired_projector(info.path)
    for event in client.load(info, planned.settings, cancel, projector=projector):
        if isinstance(event, ev.Loaded):
            notes = compare(planned.plan, event.facts)
            event = ev.Loaded(dataclasses.replace(event.facts, plan_notes=tuple(notes)))
            client.facts = event.facts
        yield event


def applied(facts: ev.ModelFacts) -> dict[str, dict[str, int]]:
    """What llama.cpp allocated, per device ("CPU", "CUDA0", "Metal") and kind."""
    out: dict[str, dict[str, int]] = {}
    for buffer, kind, size in facts.buffers:
        device = buffer.split("_")[0]  # CPU_Mapped, CPU_REPACK, CUDA_Host -> CPU/CUDA
        if device == "CUDA" or buffer.endswith("_Host"):
            device = "CPU"  # pinned host memory is RAM
        out.setdefault(device, {}).setdefault(kind, 0)
        out[device][kind] += size
    return out


def compare(plan: Plan, facts: ev.ModelFacts) -> list[str]:
    """Where the load differs from the plan by more than 2%, in words (empty: as planned)."""
    notes: list[str] = []
    got = applied(facts)
    if not got:
        return notes
    for device in plan.devices:
        have = got.get(device.name, {})
        for label, planned, kind in (
            ("weights", device.weights + device.experts, "model"),
            ("KV cache", device.kv, "KV"),
        ):
            actual = have.get(kind, 0)
            if abs(actual - planned) > DIFF_TOLERANCE * max(planned, 1) and (
                abs(actual - planned) > _MIB  # a tiny model's rounding is not news
            ):
                notes.append(
                    f"{device.name} {label}: planned {planned / _MIB:,.0f} MiB, "
                    f"llama.cpp allocated {actual / _MIB:,.0f} MiB"
                )
    for extra in sorted(set(got) - {d.name for d in plan.devices}):
        notes.append(f"llama.cpp used {extra}, which the plan did not include")
    return notes


def summary(plan: Plan) -> str:
    """The plan in use, in one line (the model bar, ``herd chat --show-plan``'s first line)."""
    gpus = [d.name for d in plan.devices if d.kind == "gpu"]
    if not gpus:
        where = "all on the CPU"
    elif not plan.cpu_expert_layers:
        where = f"all on {', '.join(gpus)}"
    else:
        where = (
            f"experts of {len(plan.cpu_expert_layers)} of {plan.n_moe_layers} MoE layers in "
            f"RAM, the rest on {', '.join(gpus)}"
        )
    parts = [
        f"Plan: {where}",
        f"{plan.n_ctx:,} tokens of context",
        f"{plan.type_k} KV cache",
        f"{plan.n_threads} thread{'s' if plan.n_threads != 1 else ''}",
    ]
    if plan.predicted_decode_tok_s > 0:
        parts.append(f"about {plan.predicted_decode_tok_s:.0f} tok/s")
    return " · ".join(parts)


def settings_json(planned: Planned) -> dict[str, Any]:
    """The engine settings a load would use (``herd chat --dry-run --json``)."""
    s, plan = planned.settings, planned.plan
    return {
        "n_ctx": s.n_ctx,
        "n_gpu_layers": s.n_gpu_layers,
        "type_k": str(s.type_k),
        "type_v": str(s.type_v),
        "swa_full": s.swa_full,
        "flash_attn": s.flash_attn,
        "tensor_split": list(s.tensor_split),
        "rpc_servers": list(s.rpc_servers),
        "overrides": [list(o) for o in s.tensor_overrides],
        "n_threads": s.n_threads,
        "use_mmap": s.use_mmap,
        "n_batch": s.n_batch,
        "n_ubatch": s.n_ubatch,
        "use_mlock": s.use_mlock,
        "fits": plan.fits,
        "cpu_expert_layers": list(plan.cpu_expert_layers),
        "model": plan.model,
    }


def paired_projector(path: Path) -> Path | None:
    """The vision projector the model's own store pairs with it, when no file sits beside it.

    Ollama keeps weights and projector as hash-named blobs that its manifests pair up; a
    model loaded from there gets its projector from the manifest (the person's own choice
    of projector still comes first).
    """
    if path.parent.name != "blobs":
        return None
    from app.core.hub.ollama_store import scan_ollama

    for model in scan_ollama(path.parent.parent).models:
        if model.path == path and model.projector is not None:
            return model.projector
    return None
