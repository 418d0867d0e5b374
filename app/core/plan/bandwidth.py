"""Memory bandwidth of known devices, for the planner's decode-speed prediction.

Decoding one token reads every weight it uses once, so a device's share of the time is
(bytes it reads per token) / (its memory bandwidth). Peak figures are the vendors'; what
llama.cpp reaches is lower, so the planner scales them by an efficiency factor. Unknown
devices get a cautious default: a slow prediction is a pleasant surprise, a fast one a
disappointment.
"""

from __future__ import annotations

import re

from app.core.hardware.probe import Backend

# description substring -> peak GB/s; the longest matching substring wins
GPU_BANDWIDTH_GBPS: dict[str, float] = {
    # NVIDIA data centre
    "H200": 4800, "H100 NVL": 3900, "H100 SXM": 3350, "H100 80GB HBM3": 3350,
    "H100 PCIe": 2000, "H100": 2000, "GH200": 4000,
    "A100-SXM4-80GB": 2039, "A100 80GB": 1935, "A100": 1555,
    "L40S": 864, "L40": 864, "L4": 300, "A10G": 600, "A10": 600, "V100": 900, "T4": 320,
    "RTX 6000 Ada": 960, "RTX A6000": 768, "A6000": 768, "RTX A5000": 768, "RTX A4000": 448,
    # GeForce
    "RTX 5090": 1792, "RTX 5080": 960, "RTX 5070 Ti": 896, "RTX 5070": 672,
    "RTX 4090": 1008, "RTX 4080 SUPER": 736, "RTX 4080": 717, "RTX 4070 Ti SUPER": 672,
    "RTX 4070 Ti": 504, "RTX 4070 SUPER": 504, "RTX 4070": 504, "RTX 4060 Ti": 288,
    "RTX 4060": 272, "RTX 3090 Ti": 1008, "RTX 3090": 936, "RTX 3080 Ti": 912,
    "RTX 3080": 760, "RTX 3070": 448, "RTX 3060": 360,
    # Apple Silicon (unified memory: the GPU's figure)
    "M1 Ultra": 800, "M1 Max": 400, "M1 Pro": 200, "M1": 68,
    "M2 Ultra": 800, "M2 Max": 400, "M2 Pro": 200, "M2": 100,
    "M3 Ultra": 819, "M3 Max": 400, "M3 Pro": 150, "M3": 100,
    "M4 Max": 546, "M4 Pro": 273, "M4": 120,
}  # fmt: skip

# whole words only: "M3" must not match the "HBM3" of "H100 80GB HBM3"
_PATTERNS = {
    k: re.compile(rf"(?<![a-z0-9]){re.escape(k.lower())}(?![a-z0-9])") for k in GPU_BANDWIDTH_GBPS
}

DEFAULT_GPU_GBPS = {Backend.CUDA: 300.0, Backend.METAL: 100.0}
DEFAULT_CPU_GBPS = 60.0  # dual-channel DDR5
DISK_GBPS = 2.0  # what a consumer NVMe drive sustains for scattered mmap reads

GPU_EFFICIENCY = 0.6  # share of peak llama.cpp reaches in MoE decode (cautious)
CPU_EFFICIENCY = 0.6
APPLE_CPU_SHARE = 0.5  # the CPU cores of an Apple chip reach about half the GPU's bandwidth


def lookup(description: str) -> float | None:
    """Peak GB/s of the device ``description`` names, or None when it is unknown."""
    text = description.lower()
    best = max((k for k, rx in _PATTERNS.items() if rx.search(text)), key=len, default=None)
    return GPU_BANDWIDTH_GBPS[best] if best else None


def gpu_bandwidth(description: str, backend: Backend) -> tuple[float, bool]:
    """Effective bytes-per-second figure (GB/s) of a GPU, and whether it was known."""
    peak = lookup(description)
    known = peak is not None
    peak = peak if peak is not None else DEFAULT_GPU_GBPS.get(backend, 100.0)
    return peak * GPU_EFFICIENCY, known


def cpu_bandwidth(unified_gpu_description: str | None = None) -> float:
    """Effective GB/s of the CPU reading from RAM (on Apple, from the shared memory)."""
    if unified_gpu_description:
        peak = lookup(unified_gpu_description)
        if peak is not None:
            return peak * APPLE_CPU_SHARE * CPU_EFFICIENCY
    return DEFAULT_CPU_GBPS * CPU_EFFICIENCY
