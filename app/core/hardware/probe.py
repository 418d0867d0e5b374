"""What this machine has for running a model: GPUs, their memory, RAM, cores.

Probes: NVML (nvidia-ml-py) with ``nvidia-smi`` as fallback on CUDA machines; ``sysctl``
on Apple Silicon (unified memory, the GPU working-set limit); psutil for RAM and cores.
The engine process also reports llama.cpp's own device list, which wins on disagreement.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil

# The described machines live beside the probe; callers import both from here.

logger = logging.getLogger(__name__)
KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40

TOOL_TIMEOUT_S = 5.0
NVIDIA_SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=index,name,memory.total,memory.free",
    "--format=csv,noheader,nounits",
]
SYSCTL_QUERY = [
    "sysctl",
    "hw.memsize",
    "hw.optional.arm64",
    "iogpu.wired_limit_mb",
    "machdep.cpu.brand_string",
]

# enum ggml_backend_dev_type, in the order of the ggml-backend.h that llama-cpp-python
# 0.3.36 ships (IGPU was inserted before ACCEL in 2025, so older lists differ).
GGML_DEVICE_CPU, GGML_DEVICE_GPU, GGML_DEVICE_IGPU, GGML_DEVICE_ACCEL, GGML_DEVICE_META = range(5)

Runner = Callable[[list[str]], str]


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
    notes: tuple[str, ...] = ()  # what the probe could not see, for "why no GPU?"


# --- tools -------------------------------------------------------------------------------


def run_tool(argv: list[str]) -> str:
    """Run a probe tool briefly and return what it printed on standard output.

    A non-zero exit is logged, not raised: ``sysctl`` still prints the names it knows
    when one is unknown, and nvidia-smi prints healthy GPUs' rows beside a lost one.

    Raises:
        OSError: the tool is missing or cannot be started.
        subprocess.TimeoutExpired: it ran longer than ``TOOL_TIMEOUT_S``.
    """
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=TOOL_TIMEOUT_S,
        check=False,
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console flash
    )
    if result.returncode != 0:
        logger.info("%s exited with %d: %s", argv[0], result.returncode, result.stderr.strip())
    return result.stdout


def _ask(runner: Runner, argv: list[str], notes: list[str]) -> str:
    """``runner(argv)``, or "" with a note when the tool is missing, hangs or fails."""
    try:
        return runner(argv)
    except (OSError, subprocess.SubprocessError, UnicodeError) as exc:
        logger.info("%s unavailable: %s", argv[0], exc)
        notes.append(f"{argv[0]} unavailable: {exc}")
        return ""


# --- CUDA --------------------------------------------------------------------------------


def _mib_field(field: str) -> int | None:
    """Bytes from a nounits MiB field; None for "[N/A]", "[Not Supported]", errors."""
    return int(field) * MiB if field.isdecimal() else None


def parse_nvidia_smi(text: str) -> tuple[Device, ...]:
    """Devices from ``nvidia-smi --query-gpu=index,name,memory.total,memory.free`` CSV.

    Rows are sorted by nvidia-smi's index and named ``CUDA0``, ``CUDA1``... in that order,
    skipping lines that are not rows (driver errors, "No devices were found", a lost GPU's
    "Unable to determine the device handle"). A total the tool cannot give ("[N/A]" on
    GB10 or Jetson, whose GPU memory is system RAM) is reported as 0 total and 0 free;
    an unknown free with a known total reads as all free.
    """
    rows: list[tuple[int, str, int, int]] = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < 4 or not parts[0].isdecimal():
            if line.strip():
                logger.warning("nvidia-smi: %s", line.strip())
            continue
        total, free = _mib_field(parts[-2]), _mib_field(parts[-1])
        if total is None:
            total = free = 0
        rows.append((int(parts[0]), ", ".join(parts[1:-2]), total, total if free is None else free))
    rows.sort()
    return tuple(
        Device(f"CUDA{n}", Backend.CUDA, name, total, free)
        for n, (_, name, total, free) in enumerate(rows)
    )


def _import_pynvml() -> Any | None:
    """The ``pynvml`` module of nvidia-ml-py, or None (it is an optional dependency)."""
    try:
        with warnings.catch_warnings():  # the old "pynvml" wrapper warns it is deprecated
            warnings.simplefilter("ignore")
            import pynvml
    except ImportError:
        return None
    return pynvml


def probe_nvml(nvml: Any) -> tuple[Device, ...] | None:
    """Devices as NVML reports them, or None when NVML cannot be used at all.

    A GPU NVML cannot open is skipped (CUDA will not enumerate it either); one whose
    memory NVML does not report (GB10, Jetson) gets 0 total and 0 free, as in
    :func:`parse_nvidia_smi`.
    """
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
        logger.info("NVML unavailable: %s", exc)
        return None
    devices: list[Device] = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = nvml.nvmlDeviceGetName(handle)
            except Exception as exc:
                logger.warning("NVML cannot open GPU %d: %s", index, exc)
                continue
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                total, free = int(memory.total), int(memory.free)
            except Exception as exc:
                logger.info("NVML reports no memory for GPU %d: %s", index, exc)
                total = free = 0
            name = name.decode() if isinstance(name, bytes) else str(name)  # bytes before 11.515
            devices.append(Device(f"CUDA{len(devices)}", Backend.CUDA, name, total, free))
    except Exception as exc:
        logger.warning("NVML failed: %s", exc)
        return None
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    return tuple(devices)


def _probe_cuda(runner: Runner, nvml: Any | None, notes: list[str]) -> tuple[Device, ...]:
    nvml = nvml if nvml is not None else _import_pynvml()
    devices = probe_nvml(nvml) if nvml is not None else None
    if devices is not None:
        return devices
    notes.append("NVML unavailable (nvidia-ml-py missing or no driver); asked nvidia-smi")
    return parse_nvidia_smi(_ask(runner, NVIDIA_SMI_QUERY, notes))


# --- Apple Silicon -----------------------------------------------------------------------


def parse_sysctl(text: str) -> dict[str, str]:
    """``{name: value}`` from ``sysctl name...`` output ("hw.memsize: 206158430208").

    Lines that are not a dotted name and a value (an "unknown oid" error, should it be
    mixed in) are ignored.
    """
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition(": ")
        if sep and "." in name and " " not in name:
            values[name] = value.strip()
    return values


def apple_working_set_limit(memsize: int, wired_limit_mb: int) -> int:
    """Bytes the GPU of an Apple Silicon Mac with ``memsize`` bytes of RAM may wire.

    ``iogpu.wired_limit_mb`` (MiB) wins when set and non-zero: Metal's
    recommendedMaxWorkingSetSize follows it both ways (capped here at the RAM). At 0,
    macOS uses its default, which this reproduces without Metal (no pyobjc): 2/3 of RAM
    up to 32 GiB, 3/4 from 36 GiB up, as llama.cpp's ``recommendedMaxWorkingSetSize``
    log line reads on 8, 16, 32 GiB (2/3) and 36, 64, 96, 192 GiB (3/4) Macs. Recent
    macOS on M4/M5 machines was seen to allow more (about 0.74 to 0.84 of RAM), so this
    is a floor; the engine's own report replaces it (:func:`merge_engine_devices`).
    """
    if wired_limit_mb > 0:
        return min(wired_limit_mb * MiB, memsize)
    return memsize * 2 // 3 if memsize <= 32 * GiB else memsize * 3 // 4


def _int(values: dict[str, str], name: str) -> int:
    value = values.get(name, "")
    return int(value) if value.isdecimal() else 0


def _probe_apple(runner: Runner, ram_total: int, ram_available: int, cores: int) -> Hardware:
    notes: list[str] = []
    values = parse_sysctl(_ask(runner, SYSCTL_QUERY, notes))
    brand = values.get("machdep.cpu.brand_string", "")
    if values.get("hw.optional.arm64") != "1":  # an Intel Mac: Herd runs it on the CPU
        notes.append("not Apple Silicon: no Metal GPU")
        return Hardware(
            (), ram_total, ram_available, cores, cpu_description=brand, notes=tuple(notes)
        )
    memsize = _int(values, "hw.memsize") or ram_total
    limit = apple_working_set_limit(memsize, _int(values, "iogpu.wired_limit_mb"))
    gpu = Device(
        "Metal", Backend.METAL, brand or "Apple Silicon", memsize, min(limit, ram_available)
    )
    return Hardware(
        (gpu,),
        ram_total,
        ram_available,
        cores,
        unified_memory=True,
        gpu_working_set_limit=limit,
        cpu_description=brand,
        notes=tuple(notes),
    )


# --- the probe ---------------------------------------------------------------------------


def physical_cores() -> int:
    """This machine's physical CPU cores (logical ones where psutil cannot tell)."""
    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


def _linux_cpu_brand(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    with contextlib.suppress(OSError):
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    return ""


def probe_hardware(
    *, runner: Runner | None = None, platform: str | None = None, nvml: Any | None = None
) -> Hardware:
    """Probe this machine; never raises: a missing tool means fewer devices, noted.

    Args:
        runner: runs a tool and returns its standard output (default :func:`run_tool`).
        platform: ``sys.platform`` unless given ("darwin" probes Apple Silicon).
        nvml: an NVML module (default: ``pynvml`` from nvidia-ml-py, if installed).

    RAM and physical cores always come from psutil. A CUDA device whose memory the
    tools cannot report (GB10, Jetson) shares system RAM: it is described with the RAM
    figures and the machine is marked ``unified_memory``.
    """
    run = runner or run_tool
    plat = platform or sys.platform
    memory = psutil.virtual_memory()
    cores = physical_cores()
    if plat == "darwin":
        return _probe_apple(run, memory.total, memory.available, cores)
    notes: list[str] = []
    devices = _probe_cuda(run, nvml, notes)
    shared = any(d.total_bytes == 0 for d in devices)
    if shared:
        notes.append("a GPU reports no memory of its own: it shares system RAM")
        devices = tuple(
            replace(d, total_bytes=memory.total, free_bytes=memory.available)
            if d.total_bytes == 0
            else d
            for d in devices
        )
    brand = _linux_cpu_brand() if plat.startswith("linux") else ""
    return Hardware(
        devices,
        memory.total,
        memory.available,
        cores,
        unified_memory=shared,
        cpu_description=brand,
        notes=tuple(notes),
    )


# --- llama.cpp's own view ----------------------------------------------------------------


def _backend_from_name(name: str) -> Backend | None:
    if name.startswith("CUDA"):
        return Backend.CUDA
    if name == "Metal" or name.startswith("MTL"):  # "MTL0" in ggml since late 2025
        return Backend.METAL
    return None


def devices_from_ggml(entries: Sequence[tuple[str, str, int, int, int]]) -> tuple[Device, ...]:
    """Devices from ``(name, description, type, free, total)`` as ggml_backend_dev_* give them.

    Only GPU and IGPU entries become devices (the CPU is :class:`Hardware`'s RAM; ACCEL
    entries such as BLAS work in host memory), and only CUDA and Metal ones, which are
    the backends Herd runs on. For Metal, ggml reports recommendedMaxWorkingSetSize as
    the total; :func:`merge_engine_devices` turns that into the working-set limit.
    """
    devices = []
    for name, description, kind, free, total in entries:
        if kind not in (GGML_DEVICE_GPU, GGML_DEVICE_IGPU):
            continue
        backend = _backend_from_name(name)
        if backend is None:
            logger.info("llama.cpp device %s (%s) is not CUDA or Metal: unused", name, description)
            continue
        devices.append(Device(name, backend, description, int(total), int(free)))
    return tuple(devices)


def merge_engine_devices(hw: Hardware, engine_devices: Sequence[Device]) -> Hardware:
    """``hw`` with llama.cpp's device list (from :func:`devices_from_ggml`) in place of its own.

    The rule: the engine's list wins outright, names, descriptions and memory alike,
    because it is what llama.cpp will offload to. CUDA numbers GPUs fastest first and
    honours ``CUDA_VISIBLE_DEVICES`` where NVML counts in PCI order, and a build without
    a GPU backend sees no GPU whatever NVML says, so an empty list means CPU only.

    One translation: a Metal device's total from ggml is the working-set limit, so it
    becomes ``gpu_working_set_limit``; the device total stays the unified pool (the
    probed one, else RAM) and its free is capped by RAM available.
    """
    devices: list[Device] = []
    limit = None
    pool = next((d.total_bytes for d in hw.devices if d.backend is Backend.METAL), hw.ram_total)
    for device in engine_devices:
        if device.backend is Backend.METAL:
            limit = device.total_bytes
            free = min(device.free_bytes, hw.ram_available)
            device = replace(device, total_bytes=pool, free_bytes=free)
        devices.append(device)
    if tuple(devices) != hw.devices:
        logger.info("llama.cpp sees %s; the probe saw %s", devices, hw.devices)
    unified = limit is not None or (hw.unified_memory and bool(devices))
    return replace(hw, devices=tuple(devices), unified_memory=unified, gpu_working_set_limit=limit)
