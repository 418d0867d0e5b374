"""The CPU in words and flags: which vector units llama.cpp's kernels may use here.

Read from ``/proc/cpuinfo`` on Linux and ``sysctl`` on macOS (both recorded outputs are
parsed by pure functions, so tests need no such machine). llama.cpp's own view of the
same (its ``system_info`` line) comes from the engine self-check.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Flags as /proc/cpuinfo spells them -> the name people know, in the order shown.
_X86_FEATURES = {
    "sse4_2": "SSE4.2",
    "avx": "AVX",
    "avx2": "AVX2",
    "fma": "FMA",
    "f16c": "F16C",
    "avx_vnni": "AVX-VNNI",
    "avx512f": "AVX512",
    "avx512_vnni": "AVX512-VNNI",
    "avx512_bf16": "AVX512-BF16",
    "amx_tile": "AMX",
    "amx_int8": "AMX-INT8",
    "amx_bf16": "AMX-BF16",
}
_ARM_FEATURES = {
    "asimd": "NEON",
    "asimddp": "DOTPROD",
    "i8mm": "I8MM",
    "sve": "SVE",
    "sve2": "SVE2",
}
_MAC_FEATURES = {
    "hw.optional.neon": "NEON",
    "hw.optional.arm.FEAT_DotProd": "DOTPROD",
    "hw.optional.arm.FEAT_I8MM": "I8MM",
    "hw.optional.arm.FEAT_BF16": "BF16",
    "hw.optional.arm.FEAT_SME": "SME",
}


@dataclass(frozen=True, slots=True)
class CpuInfo:
    """The CPU's model name, architecture, logical cores and the features that matter."""

    model: str
    arch: str
    cores: int
    features: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form."""
        return {
            "model": self.model,
            "arch": self.arch,
            "cores": self.cores,
            "features": list(self.features),
        }


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """(model name, known features) from the text of Linux's ``/proc/cpuinfo``."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in {"model name", "cpu model", "hardware"} and not model:
            model = value.strip()
        elif key in {"flags", "features"} and not flags:
            flags = set(value.split())
    table = {**_X86_FEATURES, **_ARM_FEATURES}
    return model, tuple(name for flag, name in table.items() if flag in flags)


def parse_sysctl_features(text: str) -> tuple[str, ...]:
    """Known features from ``sysctl hw.optional`` output (``name: 1`` lines) on macOS."""
    on: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if value.strip() == "1":
            on.add(key.strip())
    return tuple(name for key, name in _MAC_FEATURES.items() if key in on)


def probe_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """This machine's CPU (never raises: what cannot be read stays empty)."""
    arch = platform.machine() or "unknown"
    cores = os.cpu_count() or 1
    model = ""
    features: tuple[str, ...] = ()
    if sys.platform.startswith("linux"):
        try:
            model, features = parse_cpuinfo(cpuinfo.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            pass
    elif sys.platform == "darwin":
        model = _sysctl(["sysctl", "-n", "machdep.cpu.brand_string"]).strip()
        features = parse_sysctl_features(_sysctl(["sysctl", "hw.optional"]))
    return CpuInfo(model or platform.processor() or arch, arch, cores, features)


def _sysctl(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
