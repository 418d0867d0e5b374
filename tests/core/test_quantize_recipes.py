"""Quantization recipes as data: they parse, cover every tensor, and fit their machines.

Sizes are predicted on the real Scout and Maverick layouts (header only), which
``quantize.layouts`` keeps as data and which must match ``tests.fixtures.real_layouts``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from app.__main__ import main
from app.core.gguf.info import GGUFInfo
from app.core.hardware.probe import GiB
from app.core.hardware.spec import profile
from quantize.layouts import family_info, maverick_info, scout_info
from quantize.predict import Prediction, UnpredictableError, predict
from quantize.recipe import (
    IMATRIX_TYPES,
    Recipe,
    RecipeError,
    Rule,
    load_recipes,
    recipe_named,
    stem_regex,
)
from quantize.verdict import choose_recipe, judge
from tests.fixtures.real_layouts import maverick_q4, scout_q4_k_m

TARGETS = ("24gb-gpu", "mac-64gb", "mac-128gb", "192gb")


def test_layouts_are_the_real_models() -> None:
    for ours, real in ((scout_info(), scout_q4_k_m()), (maverick_info(), maverick_q4())):
        assert [(t.name, t.shape) for t in ours.tensors] == [
            (t.name, t.shape) for t in real.tensors
        ]
        assert ours.n_layers == real.n_layers == 48
        assert ours.n_experts == real.n_experts
        assert ours.moe_layers == real.moe_layers
        assert ours.param_count == real.param_count


def test_every_model_has_every_target_and_a_baseline() -> None:
    names = {r.name for r in load_recipes()}
    for family in ("scout", "maverick"):
        assert {f"{family}-{t}" for t in TARGETS} <= names
    base = recipe_named("q4_k_m")
    assert base.rules == () and base.ftype == "Q4_K_M"


def test_an_unknown_recipe_lists_the_known_ones() -> None:
    with pytest.raises(RecipeError) as err:
        recipe_named("scout-tiny")
    assert "scout-24gb-gpu" in err.value.hint


def test_a_recipe_cannot_quantize_the_router(tmp_path: Path) -> None:
    bad = tmp_path / "r.toml"
    bad.write_text(
        '[[recipe]]\nname="x"\ntitle="x"\nfamily="scout"\nftype="Q4_K_M"\n'
        'rules=[["ffn_gate_inp","Q4_K"]]\nmachine={profile="cpu-64gb"}\n'
    )
    with pytest.raises(RecipeError, match="never quantizes ffn_gate_inp"):
        load_recipes(bad)
    bad.write_text(bad.read_text().replace('"Q4_K"]', '"F32"]').replace("Q4_K_M", "Q9_Z"))
    with pytest.raises(RecipeError, match="Q9_Z"):
        load_recipes(bad)


def test_patterns_are_globs_over_the_stem() -> None:
    exps = re.compile(stem_regex("ffn_*_exps"))
    assert exps.search("blk.12.ffn_down_exps.weight")
    assert not exps.search("blk.12.ffn_down_shexp.weight")
    assert not exps.search("blk.1.ffn_gate_inp.weight")
    assert re.compile(stem_regex("output")).search("output.weight")
    assert not re.compile(stem_regex("output")).search("output_norm.weight")


@pytest.mark.parametrize("recipe", load_recipes(), ids=lambda r: r.name)
def test_each_recipe_names_every_tensor(recipe: Recipe) -> None:
    for family in ("scout", "maverick"):
        pred = predict(family_info(family), recipe)
        for t in pred.tensors:
            if t.pattern == "kept":  # norms and router: llama.cpp never quantizes them
                assert t.type == t.src_type == "F32"
                continue
            if recipe.rules:
                assert t.pattern != "(file type's mix)", t.name
        experts = [t for t in pred.tensors if t.name.endswith("_exps.weight")]
        attention = [t for t in pred.tensors if ".attn_" in t.name and "norm" not in t.name]
        if recipe.rules:  # the point: experts squeezed, what every token reads kept high
            bits = {t.type: _bpw(t.type) for t in pred.tensors}
            assert max(bits[t.type] for t in experts) <= min(bits[t.type] for t in attention)


def _bpw(qtype: str) -> float:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[qtype]]
    return size * 8 / block


def test_the_baseline_is_llama_cpps_q4_k_m_mix() -> None:
    pred = predict(scout_info(), recipe_named("q4_k_m"))
    types = pred.types()
    assert types["token_embd.weight"] == "Q4_K" and types["output.weight"] == "Q6_K"
    more = [0, 1, 2, 3, 4, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35, 38, 41, 42, 43, 44, 45, 46, 47]
    for il in range(48):
        want = "Q6_K" if il in more else "Q4_K"
        assert types[f"blk.{il}.attn_v.weight"] == want
        assert types[f"blk.{il}.ffn_down_exps.weight"] == want
        assert types[f"blk.{il}.ffn_up_exps.weight"] == "Q4_K"
    # the real Scout Q4_K_M download is 65.4 GB
    assert 60 * GiB < pred.file_bytes < 61.5 * GiB


def test_an_unruled_tensor_under_another_file_type_is_refused() -> None:
    recipe = Recipe("x", "x", "any", "IQ2_XXS", (Rule("ffn_*_exps", "IQ2_XXS"),),
                    recipe_named("q4_k_m").machine)  # fmt: skip
    with pytest.raises(UnpredictableError):
        predict(scout_info(), recipe)


def _reshaped(stem: str, ncols: int) -> GGUFInfo:
    info = scout_info()
    tensors = tuple(
        dataclasses.replace(t, shape=(ncols, *t.shape[1:])) if f".{stem}." in t.name else t
        for t in info.tensors
    )
    return dataclasses.replace(info, tensors=tensors)


def test_rows_that_a_block_does_not_divide_fall_back_like_llama_cpp() -> None:
    # Q4_K on 224 columns: not a multiple of 256, so Q5_0 (blocks of 32)
    up = predict(_reshaped("ffn_up_exps", 224), recipe_named("scout-24gb-gpu")).types()
    assert up["blk.0.ffn_up_exps.weight"] == "Q5_0"
    # Q6_K on 200: Q8_0 would be next, but 200 is no multiple of 32 either: F16
    q = predict(_reshaped("attn_q", 200), recipe_named("scout-mac-64gb")).types()
    assert q["blk.0.attn_q.weight"] == "F16"


@pytest.mark.parametrize("recipe", [r for r in load_recipes() if r.family != "any"],
                         ids=lambda r: r.name)  # fmt: skip
def test_each_recipe_fits_its_machine_by_the_planner(recipe: Recipe) -> None:
    pred = predict(family_info(recipe.family), recipe)
    verdict = judge(pred)
    assert verdict.fits, verdict.summary()
    assert verdict.n_ctx >= 8192
    if recipe.allow_disk:  # Maverick on 64 GB: nothing fits in memory; the words say so
        assert verdict.disk_bytes > 0 and "from disk" in verdict.summary()
        assert "disk" in recipe.title
    else:
        assert verdict.disk_bytes == 0 and recipe.title.startswith(("fits", "best"))
        cpu_experts = [d.experts for d in verdict.plan.devices if d.kind == "cpu"]
        if verdict.unified:  # on a Mac every expert stays on the GPU side
            assert cpu_experts == [0]
        else:  # on the PC, the experts that do not fit the GPU go to RAM: the point
            assert 0 < verdict.gpu_expert_layers < verdict.n_moe_layers


def test_bigger_machines_get_more_bits() -> None:
    for family in ("scout", "maverick"):
        sizes = [predict(family_info(family), recipe_named(f"{family}-{t}")).file_bytes
                 for t in ("mac-64gb", "mac-128gb", "192gb")]  # fmt: skip
        assert sizes == sorted(sizes)


def test_very_low_bit_recipes_say_they_need_an_imatrix() -> None:
    for r in load_recipes():
        assert r.needs_imatrix == any(rule.type in IMATRIX_TYPES for rule in r.rules)
    assert recipe_named("maverick-mac-128gb").needs_imatrix
    assert not recipe_named("scout-24gb-gpu").needs_imatrix


def test_the_predicted_file_is_what_the_planner_reads() -> None:
    pred: Prediction = predict(maverick_info(), recipe_named("maverick-192gb"))
    info = pred.as_info()
    assert info.n_bytes == sum(t.n_bytes for t in pred.tensors)
    assert info.file_size == pred.file_bytes
    assert info.quant_mix["IQ2_XS"][0] == 48  # gate and up experts of 24 MoE layers
    assert info.quant_mix["IQ3_XXS"][0] == 24  # down experts


def test_list_recipes_shows_sizes_for_scout_and_maverick(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERD_HOME", str(tmp_path))
    assert main(["quantize", "--list-recipes"]) == 0
    out = capsys.readouterr().out
    for r in load_recipes():
        assert r.name in out and r.title in out
    assert "65.2 GiB" in out  # scout-24gb-gpu on Scout
    assert main(["quantize", "--list-recipes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["name"] for row in rows} == {r.name for r in load_recipes()}
    for row in rows:
        assert row["predicted_bytes"]["scout"] < row["predicted_bytes"]["maverick"]


@pytest.mark.parametrize(
    ("family", "machine", "expected"),
    [
        ("scout", "rtx4090-64gb", "scout-24gb-gpu"),
        ("scout", "m4-max-64gb", "scout-mac-64gb"),
        ("scout", "mac-128gb", "scout-mac-128gb"),
        ("scout", "m3-ultra-192gb", "scout-192gb"),
        ("maverick", "rtx4090-64gb", "maverick-24gb-gpu"),
        ("maverick", "m4-max-64gb", "maverick-mac-64gb"),
        ("maverick", "mac-128gb", "maverick-mac-128gb"),
        ("maverick", "m3-ultra-192gb", "maverick-192gb"),
    ],
)
def test_the_planner_chooses_the_recipe_for_a_machine(
    family: str, machine: str, expected: str
) -> None:
    if machine == "mac-128gb":
        hw = recipe_named("scout-mac-128gb").machine.hardware()
    else:
        hw = profile(machine)
    chosen = choose_recipe(family_info(family), hw)
    assert chosen is not None and chosen[0].name == expected, chosen and chosen[1].summary()


def test_no_recipe_is_chosen_for_another_model() -> None:
    import dataclasses as dc

    other = dc.replace(scout_info(), metadata={"general.architecture": "qwen3"})
    assert choose_recipe(other, profile("rtx4090-64gb")) is None
