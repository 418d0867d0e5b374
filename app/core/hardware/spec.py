"""Machines described rather than probed: sizes people type, ``herd plan`` flags, profiles.

Built on :mod:`app.core.hardware.probe`'s value objects (one direction only: the probe never
needs a described machine).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from decimal import Decimal

from app.core.errors import HardwareSpecError
from app.core.hardware.probe import (
    Backend,
    Device,
    GiB,
    Hardware,
    KiB,
    MiB,
    TiB,
    apple_working_set_limit,
    physical_cores,
)

_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")
_UNITS = {"b": 1, "kb": KiB, "mb": MiB, "gb": GiB, "tb": TiB}
_UNITS |= {"kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB, "k": KiB, "m": MiB, "g": GiB, "t": TiB}


def parse_size(text: str) -> int:
    """Bytes from a size a person typed: "24GB", "24 GiB", "80G", "64000MB", "1.5TB".

    These are memory sizes, so every unit is binary (the JEDEC convention memory is sold
    by: a "192GB" Mac has 192 GiB, a "24GB" RTX 4090 about 24 GiB): KB/MB/GB/TB mean the
    same as KiB/MiB/GiB/TiB and K/M/G/T, as in ``free -g`` and llama.cpp's logs. Case does
    not matter. A number without a unit is refused: "64" could mean bytes or gigabytes.

    Raises:
        HardwareSpecError: ``text`` is not a non-negative number with a known unit.
    """
    match = _SIZE.fullmatch(text)
    unit = _UNITS.get(match[2].lower()) if match else None
    if match is None or unit is None:
        raise HardwareSpecError(
            f"{text!r} is not a size.",
            "Write a number and a unit, like 24GB, 24GiB, 80G or 64000MB.",
        )
    return int(Decimal(match[1]) * unit)


def hardware_from_spec(
    vram: Sequence[int], ram: int, unified: bool, cores: int | None = None
) -> Hardware:
    """A machine described in bytes, for ``herd plan --vram ... --ram ... --unified``.

    ``unified``: one Metal device whose total is ``ram``, limited by the Apple default
    rule (:func:`~app.core.hardware.probe.apple_working_set_limit`). Otherwise one CUDA device
    per ``vram`` entry (all free), or CPU only when there is none. All RAM counts as
    available; ``cores`` defaults to this machine's physical cores.

    Raises:
        HardwareSpecError: a size or the core count is not positive, or VRAM is given
            with ``unified``.
    """
    if ram <= 0 or any(size <= 0 for size in vram):
        raise HardwareSpecError("Memory sizes must be more than zero.", "Give sizes like 24GB.")
    if unified and vram:
        raise HardwareSpecError(
            "A unified-memory machine has no separate VRAM.",
            "For a Mac give only its RAM, marked as unified memory.",
        )
    n_cores = physical_cores() if cores is None else cores
    if n_cores <= 0:
        raise HardwareSpecError("The CPU core count must be more than zero.")
    if unified:
        return _mac("Apple Silicon (described)", ram, ram, n_cores)
    gpus = tuple(
        Device(f"CUDA{i}", Backend.CUDA, "NVIDIA GPU (described)", size, size)
        for i, size in enumerate(vram)
    )
    return Hardware(gpus, ram, ram, n_cores)


def _mac(chip: str, memsize: int, available: int, cores: int, cpu: str = "") -> Hardware:

    limit = apple_working_set_limit(memsize, 0)
    gpu = Device("Metal", Backend.METAL, chip, memsize, min(limit, available))
    return Hardware(
        (gpu,),
        memsize,
        available,
        cores,
        unified_memory=True,
        gpu_working_set_limit=limit,
        cpu_description=cpu,
    )


def _pc(
    gpu: tuple[str, int, int] | None, ram: int, available: int, cores: int, cpu: str
) -> Hardware:

    devices = (Device("CUDA0", Backend.CUDA, *gpu),) if gpu else ()
    return Hardware(devices, ram, available, cores, cpu_description=cpu)


PROFILE_NAMES = ("rtx4090-64gb", "m3-ultra-192gb", "m4-max-64gb", "cpu-64gb", "h100-80gb-256gb")


@functools.cache
def _profiles() -> dict[str, Hardware]:
    # The numbers their probes give: nvidia-smi's MiB (NVML's bytes are the same), and
    # psutil's total, which on Linux is below the DIMMs (firmware and kernel keep some).
    return {
        "rtx4090-64gb": _pc(
            ("NVIDIA GeForce RTX 4090", 24564 * MiB, 23780 * MiB),
            67_254_218_752,
            61_203_410_944,
            16,
            "AMD Ryzen 9 7950X 16-Core Processor",
        ),
        "m3-ultra-192gb": _mac("Apple M3 Ultra", 192 * GiB, 180 * GiB, 28, "Apple M3 Ultra"),
        "m4-max-64gb": _mac("Apple M4 Max", 64 * GiB, 56 * GiB, 16, "Apple M4 Max"),
        "cpu-64gb": _pc(
            None, 67_254_218_752, 62_914_560_000, 8, "AMD Ryzen 7 7700X 8-Core Processor"
        ),
        "h100-80gb-256gb": _pc(
            ("NVIDIA H100 80GB HBM3", 81559 * MiB, 81008 * MiB),
            270_146_273_280,
            258_811_428_864,
            32,
            "AMD EPYC 9354 32-Core Processor",
        ),
    }


def profile(name: str) -> Hardware:
    """A typical machine by name (one of ``PROFILE_NAMES``), as its probe would see it.

    ``rtx4090-64gb``: RTX 4090 (24564 MiB, 23780 free) and 64 GB RAM, 16 cores.
    ``m3-ultra-192gb`` / ``m4-max-64gb``: unified memory, default working-set limit
    (144 / 48 GiB). ``cpu-64gb``: no GPU, 64 GB, 8 cores. ``h100-80gb-256gb``: H100 80GB
    HBM3 (81559 MiB) and 256 GB RAM, 32 cores.

    Raises:
        HardwareSpecError: ``name`` is not a known profile.
    """
    try:
        return _profiles()[name]
    except KeyError:
        raise HardwareSpecError(
            f"No hardware profile named {name!r}.", f"Known: {', '.join(PROFILE_NAMES)}."
        ) from None
