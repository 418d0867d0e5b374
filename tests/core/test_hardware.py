"""Hardware probes on recorded tool outputs (tests/core/data/hardware), spec parsing, profiles."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from app.core.hardware.probe import (
    GGML_DEVICE_ACCEL,
    GGML_DEVICE_CPU,
    GGML_DEVICE_GPU,
    GGML_DEVICE_IGPU,
    GGML_DEVICE_META,
    NVIDIA_SMI_QUERY,
    SYSCTL_QUERY,
    Backend,
    Device,
    GiB,
    Hardware,
    MiB,
    apple_working_set_limit,
    devices_from_ggml,
    merge_engine_devices,
    parse_nvidia_smi,
    parse_sysctl,
    probe_hardware,
    run_tool,
)
from app.core.hardware.spec import profile

DATA = Path(__file__).parent / "data" / "hardware"


def recording(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


class Tools:
    """A runner that answers each tool with a recording and remembers what was asked."""

    def __init__(self, **answers: str) -> None:
        self.answers = answers  # tool name -> recording file
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> str:
        self.calls.append(argv)
        name = argv[0].replace("-", "_")
        if name not in self.answers:
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        return recording(self.answers[name])


class FakeNVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


class FakeNvml:
    """The part of pynvml the probe uses, answering from a recording (NVML cannot run here)."""

    def __init__(self, name: str | None = None, *, init_error: str = "", as_bytes: bool = False):
        self.devices = json.loads(recording(name))["devices"] if name else []
        self.init_error = init_error
        self.as_bytes = as_bytes
        self.shut_down = False

    def nvmlInit(self) -> None:
        if self.init_error:
            raise FakeNVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict:
        return self.devices[index]

    def nvmlDeviceGetName(self, handle: dict) -> str | bytes:
        return handle["name"].encode() if self.as_bytes else handle["name"]

    def nvmlDeviceGetMemoryInfo(self, handle: dict) -> SimpleNamespace:
        if "memory_error" in handle:
            raise FakeNVMLError(handle["memory_error"])
        return SimpleNamespace(total=handle["total"], free=handle["free"], used=handle["used"])


NO_NVML = FakeNvml(init_error="NVML Shared Library Not Found")


# --- nvidia-smi --------------------------------------------------------------------------


def test_nvidia_smi_one_gpu() -> None:
    (gpu,) = parse_nvidia_smi(recording("nvidia_smi_rtx4090.csv"))
    assert gpu == Device(
        "CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 4090", 25_757_220_864, 23780 * MiB
    )


def test_nvidia_smi_two_gpus_in_index_order() -> None:
    text = recording("nvidia_smi_3090_4090.csv")
    devices = parse_nvidia_smi(text)
    assert [(d.name, d.description) for d in devices] == [
        ("CUDA0", "NVIDIA GeForce RTX 3090"),
        ("CUDA1", "NVIDIA GeForce RTX 4090"),
    ]
    assert devices[0].total_bytes == 24576 * MiB and devices[1].free_bytes == 23025 * MiB
    reversed_rows = "\n".join(reversed(text.splitlines()))
    assert parse_nvidia_smi(reversed_rows) == devices


def test_nvidia_smi_skips_a_lost_gpu_and_numbers_the_rest() -> None:
    devices = parse_nvidia_smi(recording("nvidia_smi_lost_gpu.txt"))
    assert [d.name for d in devices] == ["CUDA0", "CUDA1"]
    assert devices[1].free_bytes == 24253 * MiB  # nvidia-smi's GPU 2


def test_nvidia_smi_na_memory_reads_as_unknown() -> None:
    (gpu,) = parse_nvidia_smi(recording("nvidia_smi_gb10.csv"))
    assert (gpu.description, gpu.total_bytes, gpu.free_bytes) == ("NVIDIA GB10", 0, 0)
    (gpu,) = parse_nvidia_smi("0, NVIDIA GeForce RTX 4090, 24564, [N/A]\n")
    assert gpu.free_bytes == gpu.total_bytes == 24564 * MiB


@pytest.mark.parametrize(
    "name", ["nvidia_smi_no_driver.txt", "nvidia_smi_no_devices.txt", "nvidia_smi_empty.csv"]
)
def test_nvidia_smi_without_gpus(name: str) -> None:
    assert parse_nvidia_smi(recording(name)) == ()


# --- sysctl and the Apple working-set rule -----------------------------------------------


def test_parse_sysctl() -> None:
    values = parse_sysctl(recording("sysctl_m3_ultra_192gb.txt"))
    assert values == {
        "hw.memsize": "206158430208",
        "hw.optional.arm64": "1",
        "iogpu.wired_limit_mb": "0",
        "machdep.cpu.brand_string": "Apple M3 Ultra",
    }
    intel = parse_sysctl(recording("sysctl_intel_mac.txt"))
    assert "hw.optional.arm64" not in intel
    assert intel["machdep.cpu.brand_string"] == "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz"
    assert parse_sysctl("sysctl: unknown oid 'iogpu.wired_limit_mb'\n\n") == {}


@pytest.mark.parametrize(
    ("memsize", "wired_mb", "limit"),
    [
        (8 * GiB, 0, 5_726_623_061),  # llama.cpp logs "5726.63 MB" on an 8 GB M2
        (16 * GiB, 0, 11_453_246_122),  # "11453.25 MB" on a 16 GB M1 Pro
        (32 * GiB, 0, 32 * GiB * 2 // 3),  # "21845.34" MiB on a 32 GB M1 Max
        (36 * GiB, 0, 27 * GiB),  # "28991.03 MB" on a 36 GB M4 Max
        (64 * GiB, 0, 48 * GiB),  # "51539.61 MB" on a 64 GB M2 Max
        (192 * GiB, 0, 144 * GiB),
        (192 * GiB, 184_320, 180 * GiB),  # iogpu.wired_limit_mb wins when set
        (64 * GiB, 16_384, 16 * GiB),  # ... lower as well as higher
        (64 * GiB, 1_000_000, 64 * GiB),  # never more than the RAM
    ],
)
def test_apple_working_set_limit(memsize: int, wired_mb: int, limit: int) -> None:
    assert apple_working_set_limit(memsize, wired_mb) == limit


# --- probe_hardware ----------------------------------------------------------------------


def assert_real_ram(hw: Hardware) -> None:
    assert hw.ram_total == psutil.virtual_memory().total
    assert 0 < hw.ram_available <= hw.ram_total
    assert hw.cpu_cores == (psutil.cpu_count(logical=False) or psutil.cpu_count())


@pytest.mark.parametrize(
    ("name", "chip", "memsize", "limit"),
    [
        ("sysctl_m3_ultra_192gb.txt", "Apple M3 Ultra", 192 * GiB, 144 * GiB),
        ("sysctl_m3_ultra_192gb_wired.txt", "Apple M3 Ultra", 192 * GiB, 180 * GiB),
        ("sysctl_m4_max_64gb.txt", "Apple M4 Max", 64 * GiB, 48 * GiB),
    ],
)
def test_probe_apple_silicon(name: str, chip: str, memsize: int, limit: int) -> None:
    tools = Tools(sysctl=name)
    hw = probe_hardware(runner=tools, platform="darwin", nvml=NO_NVML)
    assert tools.calls == [SYSCTL_QUERY]  # no nvidia-smi on a Mac
    assert_real_ram(hw)  # psutil is always this machine's
    (gpu,) = hw.devices
    assert (gpu.name, gpu.backend, gpu.description) == ("Metal", Backend.METAL, chip)
    assert gpu.total_bytes == memsize
    assert gpu.free_bytes == min(limit, hw.ram_available)
    assert hw.unified_memory and hw.gpu_working_set_limit == limit
    assert hw.cpu_description == chip


def test_probe_intel_mac_has_no_metal_device() -> None:
    hw = probe_hardware(runner=Tools(sysctl="sysctl_intel_mac.txt"), platform="darwin")
    assert hw.devices == () and not hw.unified_memory and hw.gpu_working_set_limit is None
    assert hw.cpu_description.startswith("Intel(R) Core(TM) i9")


def test_probe_mac_without_sysctl_is_cpu_only() -> None:
    hw = probe_hardware(runner=Tools(), platform="darwin")
    assert hw.devices == () and not hw.unified_memory
    assert_real_ram(hw)
    assert any("sysctl" in note for note in hw.notes)


def test_probe_cuda_through_nvml() -> None:
    nvml, tools = FakeNvml("nvml_3090_4090.json"), Tools()
    hw = probe_hardware(runner=tools, platform="linux", nvml=nvml)
    assert tools.calls == []  # NVML answered: no nvidia-smi
    assert nvml.shut_down
    assert hw.devices == (
        Device("CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 3090", 25_769_803_776, 25_307_578_368),
        Device("CUDA1", Backend.CUDA, "NVIDIA GeForce RTX 4090", 25_757_220_864, 24_142_413_824),
    )
    assert not hw.unified_memory and hw.gpu_working_set_limit is None
    assert_real_ram(hw)


def test_nvml_names_as_bytes() -> None:  # nvidia-ml-py before 11.515 returned bytes
    nvml = FakeNvml("nvml_3090_4090.json", as_bytes=True)
    hw = probe_hardware(runner=Tools(), platform="win32", nvml=nvml)
    assert hw.devices[1].description == "NVIDIA GeForce RTX 4090"


def test_nvml_failing_falls_back_to_nvidia_smi() -> None:
    tools = Tools(nvidia_smi="nvidia_smi_rtx4090.csv")
    nvml = FakeNvml(init_error="Driver Not Loaded")
    hw = probe_hardware(runner=tools, platform="linux", nvml=nvml)
    assert tools.calls == [NVIDIA_SMI_QUERY]
    assert [(d.name, d.total_bytes) for d in hw.devices] == [("CUDA0", 25_757_220_864)]
    assert any("NVML" in note for note in hw.notes)


@pytest.mark.parametrize(
    ("nvml", "tools"),
    [
        (FakeNvml("nvml_gb10.json"), Tools()),
        (NO_NVML, Tools(nvidia_smi="nvidia_smi_gb10.csv")),
    ],
)
def test_gpu_without_own_memory_shares_ram(nvml: FakeNvml, tools: Tools) -> None:
    hw = probe_hardware(runner=tools, platform="linux", nvml=nvml)
    (gpu,) = hw.devices
    assert gpu.description == "NVIDIA GB10"
    assert (gpu.total_bytes, gpu.free_bytes) == (hw.ram_total, hw.ram_available)
    assert hw.unified_memory


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory", "nvidia-smi"),
        subprocess.TimeoutExpired(NVIDIA_SMI_QUERY, 5.0),
        PermissionError(13, "Permission denied", "nvidia-smi"),
    ],
)
def test_no_tools_at_all_is_cpu_only(error: Exception) -> None:
    def runner(argv: list[str]) -> str:
        raise error

    hw = probe_hardware(runner=runner, platform="linux", nvml=NO_NVML)
    assert hw.devices == () and not hw.unified_memory
    assert_real_ram(hw)
    assert any("nvidia-smi unavailable" in note for note in hw.notes)


def test_nvidia_smi_driver_error_is_cpu_only() -> None:
    tools = Tools(nvidia_smi="nvidia_smi_no_driver.txt")
    assert probe_hardware(runner=tools, platform="linux", nvml=NO_NVML).devices == ()


def test_probe_this_machine_with_the_real_tools() -> None:
    hw = probe_hardware()  # default runner, real NVML if installed, real platform
    assert_real_ram(hw)
    assert all(d.total_bytes > 0 for d in hw.devices)


def test_run_tool() -> None:
    assert run_tool([sys.executable, "-c", "print('hello')"]) == "hello\n"
    failing = "import sys; print('partial'); sys.exit(3)"
    assert run_tool([sys.executable, "-c", failing]) == "partial\n"  # logged, not raised
    with pytest.raises(OSError):
        run_tool(["herd-no-such-tool-anywhere"])


# --- llama.cpp's device list -------------------------------------------------------------


def test_ggml_device_types_match_the_installed_header() -> None:
    spec = importlib.util.find_spec("llama_cpp")  # finds without importing llama_cpp
    assert spec is not None and spec.origin is not None
    header = Path(spec.origin).parents[1] / "include" / "ggml-backend.h"
    if not header.exists():
        pytest.skip("llama-cpp-python installed without its headers")
    body = re.search(r"enum ggml_backend_dev_type \{(.*?)\};", header.read_text(), re.S)
    assert body is not None
    names = re.findall(r"GGML_BACKEND_DEVICE_TYPE_(\w+)", body[1])
    assert names.index("CPU") == GGML_DEVICE_CPU and names.index("GPU") == GGML_DEVICE_GPU
    assert names.index("IGPU") == GGML_DEVICE_IGPU and names.index("ACCEL") == GGML_DEVICE_ACCEL
    assert names.index("META") == GGML_DEVICE_META


def test_devices_from_ggml() -> None:
    entries = [
        ("CPU", "AMD Ryzen 9 7950X 16-Core Processor", GGML_DEVICE_CPU, 60 * GiB, 64 * GiB),
        ("CUDA0", "NVIDIA GeForce RTX 4090", GGML_DEVICE_GPU, 24_936_185_856, 25_393_692_672),
        ("BLAS", "OpenBLAS", GGML_DEVICE_ACCEL, 0, 0),
        ("Vulkan0", "AMD Radeon RX 7900 XTX", GGML_DEVICE_GPU, 24 * GiB, 24 * GiB),
        ("MTL0", "Apple M4 Max", GGML_DEVICE_GPU, 51_000_000_000, 51_539_607_552),
        ("Metal", "Apple M2 Max", GGML_DEVICE_IGPU, 40 * GiB, 48 * GiB),
    ]
    assert devices_from_ggml(entries) == (
        Device("CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 4090", 25_393_692_672, 24_936_185_856),
        Device("MTL0", Backend.METAL, "Apple M4 Max", 51_539_607_552, 51_000_000_000),
        Device("Metal", Backend.METAL, "Apple M2 Max", 48 * GiB, 40 * GiB),
    )


def test_merge_engine_cuda_list_wins() -> None:
    probed = profile("rtx4090-64gb")
    # CUDA's own total (cudaMemGetInfo) is a little under NVML's; its name is the engine's
    engine = devices_from_ggml(
        [("CUDA0", "NVIDIA GeForce RTX 4090", GGML_DEVICE_GPU, 24_000_000_000, 25_393_692_672)]
    )
    merged = merge_engine_devices(probed, engine)
    assert merged.devices == engine
    assert (merged.ram_total, merged.cpu_cores) == (probed.ram_total, probed.cpu_cores)


def test_merge_engine_order_and_count_win() -> None:
    probed = probe_hardware(runner=Tools(), platform="linux", nvml=FakeNvml("nvml_3090_4090.json"))
    engine = (  # CUDA counts the faster 4090 first; NVML counts in PCI order
        Device("CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 4090", 25_393_692_672, 23_000_000_000),
        Device("CUDA1", Backend.CUDA, "NVIDIA GeForce RTX 3090", 25_438_126_080, 24_000_000_000),
    )
    assert merge_engine_devices(probed, engine).devices == engine
    assert merge_engine_devices(probed, engine[:1]).devices == engine[:1]  # CUDA_VISIBLE_DEVICES
    assert merge_engine_devices(probed, ()).devices == ()  # a CPU-only build of llama.cpp


def test_merge_engine_metal_total_is_the_working_set_limit() -> None:
    probed = profile("m4-max-64gb")
    engine = devices_from_ggml(
        [("MTL0", "Apple M4 Max", GGML_DEVICE_GPU, 55_000_000_000, 55_834_574_848)]
    )
    merged = merge_engine_devices(probed, engine)
    (gpu,) = merged.devices
    assert (gpu.name, gpu.description) == ("MTL0", "Apple M4 Max")
    assert gpu.total_bytes == 64 * GiB  # still the unified pool
    assert gpu.free_bytes == min(55_000_000_000, probed.ram_available)
    assert merged.gpu_working_set_limit == 55_834_574_848  # macOS's real figure wins
    assert merged.unified_memory
    cpu_only = merge_engine_devices(probed, ())
    assert not cpu_only.unified_memory and cpu_only.gpu_working_set_limit is None
