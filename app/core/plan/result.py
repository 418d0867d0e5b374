"""A plan's value objects: how to load one model on one machine, per device, and why.

Made by :func:`app.core.plan.planner.make_plan`; read by its words (:mod:`app.core.plan.words`),
the load job, the dialog and ``herd plan``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from app.core.settings import KVType, LoadSettings


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """Planned bytes on one device."""

    name: str  # llama.cpp's name: "CUDA0", "Metal", "CPU"; a worker's: "RPC0[HOST:PORT]"
    kind: str  # "gpu", "cpu", or "remote" (a worker's device, see app.core.plan.remote)
    description: str
    capacity: int  # total memory (Apple GPU: the working-set limit)
    budget: int  # what the plan may use: free memory less the safety margin
    weights: int  # dense weights: attention, norms, shared experts, dense FFN, embeddings
    experts: int  # routed experts
    kv: int
    compute: int
    bandwidth_gbps: float  # effective, as the speed prediction uses it
    host: str = ""  # a worker's device ("remote"): its HOST:PORT

    @property
    def total(self) -> int:
        """All planned bytes."""
        return self.weights + self.experts + self.kv + self.compute

    def to_json(self) -> dict[str, Any]:
        """The issue's device entry, plus the description and budget."""
        planned = {"weights": self.weights, "experts": self.experts}
        planned |= {"kv": self.kv, "compute": self.compute}
        return {
            "name": self.name,
            "kind": self.kind,
            "capacity": self.capacity,
            "planned": planned,
            "description": self.description,
            "budget": self.budget,
            **({"host": self.host} if self.host else {}),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """How to load one model on one machine, and why."""

    model: str
    fits: bool
    n_ctx: int
    type_k: KVType
    type_v: KVType
    flash_attn: bool
    swa_full: bool
    n_gpu_layers: int
    cpu_expert_layers: tuple[int, ...]
    gpu_expert_layers: tuple[int, ...]
    max_gpu_expert_layers: int  # the slider's top: MoE layers whose experts fit on GPU
    n_moe_layers: int
    tensor_overrides: tuple[tuple[str, str], ...]  # (regex, buffer type)
    tensor_split: tuple[float, ...]  # per GPU, layers; () with one GPU
    n_batch: int
    n_ubatch: int
    use_mmap: bool
    use_mlock: bool
    n_threads: int
    devices: tuple[DevicePlan, ...]
    unified_memory: bool
    predicted_decode_tok_s: float
    max_ctx: int  # the largest context that fits with these settings; 0: none does
    kv_bytes: int
    kv_full_bytes: int  # what the KV cache would take with swa_full=True
    disk_bytes: int  # weights read from disk through mmap (allow_disk only)
    wired_limit_advice_mb: int | None  # Apple: the iogpu.wired_limit_mb that fits it all
    reasons: tuple[str, ...]
    rpc_servers: tuple[str, ...] = ()  # workers holding layers (HOST:PORT)
    rpc_devices: tuple[str, ...] = ()  # their devices, HOST:PORT#N, in tensor_split's order
    network_bytes_per_token: float = 0.0  # over the network to and from the workers
    network_s_per_token: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON ``herd plan --json`` prints: the issue's keys first, then extras."""
        return {
            "model": self.model,
            "fits": self.fits,
            "n_ctx": self.n_ctx,
            "type_k": str(self.type_k),
            "type_v": str(self.type_v),
            "swa_full": self.swa_full,
            "n_gpu_layers": self.n_gpu_layers,
            "cpu_expert_layers": list(self.cpu_expert_layers),
            "predicted_decode_tok_s": round(self.predicted_decode_tok_s, 1),
            "devices": [d.to_json() for d in self.devices],
            "reasons": list(self.reasons),
            "flash_attn": self.flash_attn,
            "tensor_overrides": [list(o) for o in self.tensor_overrides],
            "tensor_split": list(self.tensor_split),
            "n_batch": self.n_batch,
            "n_ubatch": self.n_ubatch,
            "use_mmap": self.use_mmap,
            "use_mlock": self.use_mlock,
            "n_threads": self.n_threads,
            "max_ctx": self.max_ctx,
            "gpu_expert_layers": list(self.gpu_expert_layers),
            "max_gpu_expert_layers": self.max_gpu_expert_layers,
            "unified_memory": self.unified_memory,
            "kv_bytes": self.kv_bytes,
            "disk_bytes": self.disk_bytes,
            "wired_limit_advice_mb": self.wired_limit_advice_mb,
            "rpc_servers": list(self.rpc_servers),
            "rpc_devices": list(self.rpc_devices),
            "network_bytes_per_token": round(self.network_bytes_per_token),
            "network_ms_per_token": round(self.network_s_per_token * 1000, 3),
        }

    def to_load_settings(self, base: LoadSettings | None = None) -> LoadSettings:
        """``base`` (or the defaults) with this plan's load parameters."""
        return dataclasses.replace(
            base or LoadSettings(),
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            n_gpu_layers=self.n_gpu_layers,
            n_batch=self.n_batch,
            n_ubatch=self.n_ubatch,
            flash_attn=self.flash_attn,
            type_k=self.type_k,
            type_v=self.type_v,
            swa_full=self.swa_full,
            use_mmap=self.use_mmap,
            use_mlock=self.use_mlock,
            tensor_overrides=self.tensor_overrides,
            tensor_split=self.tensor_split,
            rpc_servers=self.rpc_devices,
        )
