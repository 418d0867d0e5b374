"""What this machine has for running a model: GPUs, their memory, RAM, cores.

Probes: NVML (nvidia-ml-py) with ``nvidia-smi`` as fallback on CUDA machines; ``sysctl``
on Apple Silicon (unified memory, the GPU working-set limit); psutil for RAM and cores.
The engine process also reports llama.cpp's own device list, which wins on disagreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Backend(StrEnum):
    """The compute backend a device runs llama.cpp's kernels on."""

    CUDA = "cuda"
    METAL = "metal"
    CPU = "cpu"


@dataclass(frozen=True, slots=True)
class Device:
    """One accelerator (never the CPU: system RAM is described by :class:`Hardware`)."""

    name: str  # llama.cpp's device name: "CUDA0", "Metal"
    backend: Backend
    description: str  # "NVIDIA GeForce RTX 4090", "Apple M3 Ultra"
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True, slots=True)
class Hardware:
    """The machine a plan is made for (probed, or described by ``herd plan`` flags)."""

    devices: tuple[Device, ...]
    ram_total: int
    ram_available: int
    cpu_cores: int
    unified_memory: bool = False  # Apple Silicon: GPU and CPU share one pool
    gpu_working_set_limit: int | None = None  # Apple: bytes the GPU may wire at once
    cpu_description: str = ""
