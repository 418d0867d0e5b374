"""The engine applies a plan's tensor placement, and reports where tensors went."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.core import events as ev
from app.core.chat.messages import ChatMessage, Role
from app.core.engine.client import EngineClient
from app.core.gguf.info import TensorGroup, read_gguf
from app.core.hardware.probe import GiB
from app.core.hardware.spec import hardware_from_spec
from app.core.paths import AppPaths
from app.core.plan.planner import Wishes, make_plan
from app.core.settings import SamplingSettings


@pytest.mark.parametrize(("model", "on_gpu"), [("tiny_scout", 2), ("tiny_maverick", 1)])
def test_routed_experts_of_the_planned_layers_sit_in_cpu_buffers(
    request: pytest.FixtureRequest, tmp_path: Path, model: str, on_gpu: int
) -> None:
    path: Path = request.getfixturevalue(model)
    info = read_gguf(path)
    hardware = hardware_from_spec([8 * GiB], 32 * GiB, unified=False, cores=1)
    plan = make_plan(info, hardware, Wishes(n_ctx=512, gpu_expert_layers=on_gpu))
    assert plan.fits
    assert len(plan.cpu_expert_layers) == len(info.moe_layers) - on_gpu
    settings = dataclasses.replace(plan.to_load_settings(), n_threads=1, n_gpu_layers=0)

    with EngineClient(AppPaths.under(tmp_path)) as client:
        events = list(client.load(path, settings))
        assert isinstance(events[-1], ev.Loaded), events[-1]
        placed = dict(events[-1].facts.overridden_tensors)
        expected = {
            t.name
            for t in info.tensors
            if t.group is TensorGroup.ROUTED_EXPERTS and t.layer in plan.cpu_expert_layers
        }
        assert set(placed) == expected  # exactly those tensors, nothing else moved
        assert set(placed.values()) == {"CPU"}
        assert len(expected) == 3 * len(plan.cpu_expert_layers)  # gate, up, down
        hello = [ChatMessage(Role.USER, "hello")]
        last = list(client.chat(hello, SamplingSettings(max_tokens=4, seed=1)))[-1]
        assert isinstance(last, ev.Finished)


def test_a_placement_on_a_missing_device_fails_clearly(tmp_path: Path, tiny_scout: Path) -> None:
    from app.core.settings import LoadSettings

    settings = LoadSettings(n_ctx=256, n_threads=1, tensor_overrides=((r"blk\.0\..*", "CUDA7"),))
    with EngineClient(AppPaths.under(tmp_path)) as client:
        last = list(client.load(tiny_scout, settings))[-1]
        assert isinstance(last, ev.Failed)
        assert "CUDA7" in last.message
