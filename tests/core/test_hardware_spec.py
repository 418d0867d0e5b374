"""Hardware described rather than probed: sizes people type, ``herd plan`` specs, profiles."""

from __future__ import annotations

import pytest

from app.core.errors import HardwareSpecError, HerdError
from app.core.hardware.probe import Backend, GiB, MiB, physical_cores
from app.core.hardware.spec import PROFILE_NAMES, hardware_from_spec, parse_size, profile


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("24GB", 24 * GiB),
        ("24 GiB", 24 * GiB),
        ("80G", 80 * GiB),
        ("64000MB", 64000 * MiB),
        ("1.5TB", 3 * 2**39),
        ("1.5TiB", 3 * 2**39),
        ("24gb", 24 * GiB),
        (" 512 MiB ", 512 * MiB),
        ("0.5G", GiB // 2),
        ("100B", 100),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "24", "-24GB", "24XB", "24 G B", "1e3GB", "twelve"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(HardwareSpecError) as caught:
        parse_size(text)
    assert isinstance(caught.value, HerdError) and isinstance(caught.value, ValueError)
    assert repr(text) in caught.value.user_message and "24GB" in caught.value.hint


def test_hardware_from_spec_cuda_unified_and_cpu() -> None:
    two = hardware_from_spec([24 * GiB, 16 * GiB], 128 * GiB, unified=False, cores=16)
    assert [(d.name, d.backend, d.total_bytes, d.free_bytes) for d in two.devices] == [
        ("CUDA0", Backend.CUDA, 24 * GiB, 24 * GiB),
        ("CUDA1", Backend.CUDA, 16 * GiB, 16 * GiB),
    ]
    assert (two.ram_total, two.ram_available, two.cpu_cores) == (128 * GiB, 128 * GiB, 16)
    assert not two.unified_memory

    mac = hardware_from_spec([], 192 * GiB, unified=True, cores=28)
    (gpu,) = mac.devices
    assert (gpu.backend, gpu.total_bytes, gpu.free_bytes) == (Backend.METAL, 192 * GiB, 144 * GiB)
    assert mac.unified_memory and mac.gpu_working_set_limit == 144 * GiB

    cpu = hardware_from_spec([], 64 * GiB, unified=False)
    assert cpu.devices == () and cpu.cpu_cores == physical_cores()


@pytest.mark.parametrize(
    ("vram", "ram", "unified", "cores"),
    [
        ([24 * GiB], 64 * GiB, True, 8),
        ([], 0, False, 8),
        ([0], 64 * GiB, False, 8),
        ([], GiB, False, 0),
    ],
)
def test_hardware_from_spec_refuses(vram: list[int], ram: int, unified: bool, cores: int) -> None:
    with pytest.raises(HardwareSpecError):
        hardware_from_spec(vram, ram, unified, cores)


def test_profiles() -> None:
    assert set(PROFILE_NAMES) == {
        "rtx4090-64gb", "m3-ultra-192gb", "m4-max-64gb", "cpu-64gb", "h100-80gb-256gb"
    }  # fmt: skip
    for name in PROFILE_NAMES:
        hw = profile(name)
        assert all(0 < d.free_bytes <= d.total_bytes for d in hw.devices)
        assert 0 < hw.ram_available <= hw.ram_total and hw.cpu_cores > 0
    (rtx,) = profile("rtx4090-64gb").devices
    assert rtx.total_bytes == 25_757_220_864 and 24.8e9 < rtx.free_bytes < 25e9
    ultra = profile("m3-ultra-192gb")
    assert ultra.unified_memory and ultra.gpu_working_set_limit == 144 * GiB
    assert ultra.devices[0].total_bytes == ultra.ram_total == 206_158_430_208
    assert profile("m4-max-64gb").gpu_working_set_limit == 48 * GiB
    assert profile("cpu-64gb").devices == ()
    assert profile("h100-80gb-256gb").devices[0].total_bytes == 81559 * MiB
    assert profile("h100-80gb-256gb").ram_total > 250e9
    with pytest.raises(HardwareSpecError, match="rtx5090"):
        profile("rtx5090")
