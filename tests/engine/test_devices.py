"""The engine reports llama.cpp's own device list (ggml's backend device API)."""

from __future__ import annotations

from pathlib import Path

from app.core.engine.client import EngineClient
from app.core.hardware.probe import GGML_DEVICE_CPU, Hardware, merge_engine_devices
from app.core.paths import AppPaths
from tests.engine.child import run_in_child


def _backend_devices() -> list[tuple[str, str, int, int, int]]:
    from app.core.engine import llama_devices

    return llama_devices.backend_devices()


def test_llama_cpp_lists_its_cpu_device_with_real_memory() -> None:
    entries = run_in_child(_backend_devices)  # llama.cpp never runs in pytest's process
    cpu = [e for e in entries if e[2] == GGML_DEVICE_CPU]
    assert cpu, entries
    name, description, _kind, free, total = cpu[0]
    assert name == "CPU" and description
    assert 0 < free <= total


def test_engine_devices_merge_into_the_probe(tmp_path: Path) -> None:
    with EngineClient(AppPaths.under(tmp_path)) as client:
        devices = client.devices()  # no model needed
    assert devices == ()  # this CPU-only build has no CUDA or Metal device
    probed = Hardware(devices=(), ram_total=64 * 2**30, ram_available=60 * 2**30, cpu_cores=2)
    assert merge_engine_devices(probed, devices).devices == ()
