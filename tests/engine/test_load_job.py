"""The load job: every load planned, refused before loading when it cannot fit, checked after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core import events as ev
from app.core.engine.client import EngineClient
from app.core.engine.engine_config import EngineConfig
from app.core.gguf.info import read_gguf
from app.core.hardware.probe import GiB
from app.core.hardware.spec import hardware_from_spec
from app.core.load import LoadRequest, Planned, applied, load_model, plan_for, settings_json
from app.core.model_wishes import ModelWishes
from app.core.paths import AppPaths


def _run(client: EngineClient, request: LoadRequest) -> list[object]:
    return list(load_model(client, request))


@pytest.mark.parametrize("model", ["tiny_scout", "tiny_maverick"])
def test_what_llama_cpp_applied_equals_the_plan(
    request: pytest.FixtureRequest, tmp_path: Path, model: str
) -> None:
    path: Path = request.getfixturevalue(model)
    with EngineClient(AppPaths.under(tmp_path)) as client:
        events = _run(client, LoadRequest(path, ModelWishes(n_ctx=4096)))
    planned = next(e for e in events if isinstance(e, Planned))
    loaded = events[-1]
    assert isinstance(loaded, ev.Loaded), loaded
    assert loaded.facts.n_ctx == planned.plan.n_ctx == 4096
    assert loaded.facts.plan_notes == ()
    got = applied(loaded.facts)
    (cpu,) = planned.plan.devices  # this machine: no GPU
    planned_model = cpu.weights + cpu.experts
    assert abs(got["CPU"]["model"] - planned_model) <= 0.02 * planned_model
    assert abs(got["CPU"]["KV"] - cpu.kv) <= 0.02 * cpu.kv


def test_a_difference_from_the_plan_is_shown(tmp_path: Path, tiny_scout: Path) -> None:
    # planned for a GPU this llama.cpp does not have: everything lands on the CPU instead
    gpu_box = hardware_from_spec([8 * GiB], 32 * GiB, unified=False, cores=2)
    request = LoadRequest(
        tiny_scout, ModelWishes(n_ctx=4096, gpu_expert_layers=2), hardware=gpu_box
    )
    with EngineClient(AppPaths.under(tmp_path)) as client:
        events = _run(client, request)
    planned = next(e for e in events if isinstance(e, Planned))
    assert planned.plan.cpu_expert_layers == (0, 1)  # experts of two layers planned in RAM
    loaded = events[-1]
    assert isinstance(loaded, ev.Loaded), loaded
    overridden = {t for t, _ in loaded.facts.overridden_tensors}
    assert overridden == {
        f"blk.{i}.ffn_{k}_exps.weight" for i in (0, 1) for k in "gate up down".split()
    }
    notes = loaded.facts.plan_notes
    assert any(n.startswith("CUDA0 KV cache: planned 2 MiB, llama.cpp allocated 0") for n in notes)


def test_a_plan_that_does_not_fit_is_refused_before_loading(
    tmp_path: Path, tiny_scout: Path
) -> None:
    tiny_box = hardware_from_spec([], 1024 * 1024, unified=False, cores=2)  # 1 MiB of RAM
    paths = AppPaths.under(tmp_path)
    with EngineClient(paths) as client:
        events = _run(client, LoadRequest(tiny_scout, hardware=tiny_box))
        assert client.facts is None
    assert isinstance(events[0], Planned) and not events[0].plan.fits
    failed = events[-1]
    assert isinstance(failed, ev.Failed)
    assert "does not fit this machine" in failed.message
    assert "smaller context" in failed.hint and "Nothing was loaded" in failed.hint
    assert not any(isinstance(e, ev.Progress | ev.Loaded) for e in events)
    log = paths.engine_log.read_text() if paths.engine_log.exists() else ""
    assert "load_tensors" not in log  # llama.cpp never saw the file


def test_two_gpus_get_a_tensor_split(tiny_scout: Path) -> None:
    two_gpus = hardware_from_spec([8 * GiB, 8 * GiB], 64 * GiB, unified=False, cores=2)
    planned = plan_for(read_gguf(tiny_scout), two_gpus, LoadRequest(tiny_scout))
    assert planned.settings.tensor_split == planned.plan.tensor_split
    assert len(planned.settings.tensor_split) == 2 and sum(planned.settings.tensor_split) > 0
    assert settings_json(planned)["tensor_split"] == list(planned.plan.tensor_split)


def test_tensor_split_reaches_llama_cpp_params(
    tmp_path: Path, tiny_scout: Path, engine_config: EngineConfig
) -> None:
    two_gpus = hardware_from_spec([8 * GiB, 8 * GiB], 64 * GiB, unified=False, cores=2)
    planned = plan_for(
        read_gguf(tiny_scout), two_gpus, LoadRequest(tiny_scout, ModelWishes(n_ctx=512))
    )
    code = (
        "import json, sys\n"
        "from app.core.engine import llama_ext\n"
        "from app.core.settings import LoadSettings\n"
        "from app.core.engine.engine_config import EngineConfig\n"
        "settings = LoadSettings.from_dict(json.loads(sys.argv[2]))\n"
        "config = EngineConfig.from_dict(json.loads(sys.argv[3]))\n"
        "kwargs = llama_ext.llama_kwargs(sys.argv[1], settings, config, verbose=False)\n"
        "llm = llama_ext.HerdLlama(**kwargs)\n"
        "print(json.dumps([llm.model_params.tensor_split[i] for i in range(2)]))\n"
    )
    done = subprocess.run(
        [
            sys.executable, "-c", code, str(tiny_scout),
            json.dumps(planned.settings.to_dict()), json.dumps(engine_config.to_dict()),
        ],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "GGML_NO_BACKTRACE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == list(planned.settings.tensor_split)


def test_each_model_gets_its_own_plan(tmp_path: Path, tiny_scout: Path, smollm2_gguf: Path) -> None:
    with EngineClient(AppPaths.under(tmp_path)) as client:
        first = _run(client, LoadRequest(tiny_scout, ModelWishes(n_ctx=512, gpu_expert_layers=0)))
        second = _run(client, LoadRequest(smollm2_gguf))
    a = next(e for e in first if isinstance(e, Planned))
    b = next(e for e in second if isinstance(e, Planned))
    assert a.settings.n_ctx == 512
    assert b.settings.n_ctx == read_gguf(smollm2_gguf).context_length == 8192
    assert isinstance(second[-1], ev.Loaded) and second[-1].facts.n_ctx == 8192
