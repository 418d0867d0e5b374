"""Real quantization with llama.cpp (in its child process) of a tiny F32 Llama 4, per recipe.

Each recipe's file must hold, in its own header, the types the recipe names (and that
``quantize.predict`` predicted), be within 1% of the predicted size, load and generate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.__main__ import main
from app.core import events as ev
from app.core.engine.client import EngineClient
from app.core.gguf.info import read_gguf
from app.core.jobs import CancelToken
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings
from quantize.job import (
    QuantizeFinished,
    QuantizePlan,
    QuantizeProgress,
    QuantizeRequest,
    plan_quantize,
    run_quantize,
)
from quantize.recipe import load_recipes, recipe_named
from tests.fixtures.tiny_llama4_f32 import (
    cached_tiny_f32,
    imatrix_for,
    split_gguf,
    write_imatrix_gguf,
)


@pytest.fixture(scope="session")
def tiny_f32(model_cache_dir: Path) -> Path:
    """The tiny Llama 4 Scout in F32 with 256-wide rows (cached between runs)."""
    return cached_tiny_f32(model_cache_dir)


@pytest.fixture(scope="session")
def tiny_imatrix(tiny_f32: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An importance matrix with an entry for every matrix of the tiny model."""
    folder = tmp_path_factory.mktemp("imatrix")
    return write_imatrix_gguf(folder / "tiny.imatrix.gguf", imatrix_for(tiny_f32))


def quantize_to(
    src: Path,
    out: Path,
    recipe: str,
    imatrix: Path | None = None,
    log_dir: Path | None = None,
    **kw: object,
) -> tuple[QuantizePlan, list[object]]:
    """Plan and run one quantization to the end; returns the plan and its events."""
    req = QuantizeRequest(src, out, recipe_named(recipe), imatrix=imatrix, **kw)  # type: ignore[arg-type]
    plan = plan_quantize(req)
    log = (log_dir or out.parent) / "quantize.log"
    events = list(run_quantize(plan, CancelToken(), log_path=log))
    return plan, events


@pytest.fixture(scope="module")
def written(
    tiny_f32: Path, tiny_imatrix: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[QuantizePlan, list[object], Path]]:
    """Every recipe's file from the tiny model (each about a second)."""
    folder = tmp_path_factory.mktemp("quantized")
    out: dict[str, tuple[QuantizePlan, list[object], Path]] = {}
    made: dict[object, str] = {}  # two recipes with the same types make the same file
    for recipe in load_recipes():
        same = (recipe.ftype, recipe.rules, recipe.token_embd, recipe.output)
        if same in made:
            out[recipe.name] = out[made[same]]
            continue
        path = folder / f"{recipe.name}.gguf"
        imatrix = tiny_imatrix if recipe.needs_imatrix else None
        plan, events = quantize_to(tiny_f32, path, recipe.name, imatrix)
        out[recipe.name] = (plan, events, path)
        made[same] = recipe.name
    return out


@pytest.mark.parametrize("name", [r.name for r in load_recipes()])
def test_each_recipe_writes_the_types_it_names(
    written: dict[str, tuple[QuantizePlan, list[object], Path]], name: str
) -> None:
    plan, events, path = written[name]
    done = events[-1]
    assert isinstance(done, QuantizeFinished) and done.outputs == (path,)
    got = {t.name: t.type_name for t in read_gguf(path).tensors}
    assert got == plan.prediction.types()
    recipe = recipe_named(name)
    kept = {t.name for t in plan.prediction.tensors if t.pattern == "kept"}
    named = dict.fromkeys(r.pattern for r in recipe.rules if r.pattern != "ffn_gate_inp")
    for n, qtype in got.items():  # the first rule that matches names the type
        rule = next((r for r in recipe.rules if re.search(r.regex, n)), None)
        if rule is None or n in kept:
            continue
        assert qtype == rule.type, (n, rule)
        named.pop(rule.pattern, None)
    assert not named  # every rule named some tensor (Scout has no dense FFN: ffn_* is last)
    if recipe.token_embd:
        assert got["token_embd.weight"] == recipe.token_embd
    if recipe.output:
        assert got["output.weight"] == recipe.output
    size = path.stat().st_size
    assert done.written == size
    assert abs(plan.prediction.file_bytes - size) / size < 0.01, (plan.prediction.file_bytes, size)
    assert not [p for p in path.parent.iterdir() if "partial" in p.name]
    fractions = [e.fraction for e in events if isinstance(e, QuantizeProgress)]
    assert fractions == sorted(fractions) and all(0 <= f < 1 for f in fractions)


def test_every_recipes_file_loads_and_generates(
    written: dict[str, tuple[QuantizePlan, list[object], Path]], tmp_path: Path
) -> None:
    engine = EngineClient(AppPaths.under(tmp_path / "home").ensure())
    try:
        files = {path: name for name, (_, _, path) in written.items()}
        for path, name in files.items():
            events = list(engine.load(path, LoadSettings(n_ctx=256, n_threads=2)))
            assert isinstance(events[-1], ev.Loaded), (name, events[-1])
            reply = list(engine.complete("Hello", SamplingSettings(max_tokens=6, seed=1)))
            assert isinstance(reply[-1], ev.Finished), (name, reply[-1])
            assert reply[-1].generated_tokens > 0, name
    finally:
        engine.shutdown()


def test_the_baseline_is_what_llama_cpp_makes_of_q4_k_m(
    written: dict[str, tuple[QuantizePlan, list[object], Path]],
) -> None:
    info = read_gguf(written["q4_k_m"][2])
    assert info.file_type == "Q4_K_M"
    types = {t.name: t.type_name for t in info.tensors}
    assert types["output.weight"] == "Q6_K" and types["token_embd.weight"] == "Q4_K"
    # more bits for attn_v and ffn_down in the last eighth of the layers (here: layer 3)
    assert types["blk.3.attn_v.weight"] == types["blk.3.ffn_down_exps.weight"] == "Q6_K"
    assert types["blk.1.attn_v.weight"] == types["blk.1.ffn_down_exps.weight"] == "Q4_K"
    assert types["blk.3.ffn_up_exps.weight"] == "Q4_K"


@pytest.mark.parametrize("keep_split", [True, False])
def test_a_split_source_is_read_and_written(
    tiny_f32: Path, tmp_path: Path, keep_split: bool
) -> None:
    parts = split_gguf(tiny_f32, tmp_path / "src", 3)
    out = tmp_path / "out" / "mix.gguf"
    out.parent.mkdir()
    plan, events = quantize_to(parts[0], out, "scout-mac-64gb", keep_split=keep_split)
    done = events[-1]
    assert isinstance(done, QuantizeFinished)
    names = sorted(p.name for p in out.parent.glob("*.gguf"))
    if keep_split:
        assert names == [f"mix-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    else:
        assert names == ["mix.gguf"]
    info = read_gguf(done.outputs[0])
    assert len(info.parts) == (3 if keep_split else 1)
    assert {t.name: t.type_name for t in info.tensors} == plan.prediction.types()
    assert abs(plan.prediction.file_bytes - info.file_size) / info.file_size < 0.01


def test_the_command_writes_and_reports_json(
    tiny_f32: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERD_HOME", str(tmp_path / "home"))
    out = tmp_path / "mix.gguf"
    argv = ["quantize", str(tiny_f32), str(out), "--recipe", "scout-mac-64gb", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["outputs"] == [str(out)]
    assert summary["written_bytes"] == out.stat().st_size
    assert summary["seconds"] > 0
    assert summary["patterns"]["ffn_*_exps"]["types"] == {"Q2_K": 4}
    assert "predicted size" in captured.err and "wrote" in captured.err
