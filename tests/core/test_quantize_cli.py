"""``herd quantize`` without writing: the dry run, its JSON, the planner's pick, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.__main__ import main
from tests.fixtures.tiny_llama4_f32 import cached_tiny_f32


@pytest.fixture(scope="module")
def tiny_f32(model_cache_dir: Path) -> Path:
    return cached_tiny_f32(model_cache_dir)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERD_HOME", str(tmp_path / "home"))


def test_a_dry_run_says_everything_and_writes_nothing(
    tiny_f32: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.gguf"
    argv = ["quantize", str(tiny_f32), str(out), "--recipe", "scout-24gb-gpu", "--dry-run"]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["recipe"] == "scout-24gb-gpu"
    assert summary["patterns"]["ffn_*_exps"]["types"] == {"Q4_K": 4}  # gate, up x 2 layers
    assert summary["patterns"]["ffn_down_exps"]["types"] == {"Q5_K": 2}
    assert summary["patterns"]["attn_*"]["types"] == {"Q8_0": 16}
    assert summary["patterns"]["ffn_*"]["types"] == {"Q6_K": 6}  # the dense layers' FFN
    assert summary["verdict"]["fits"] is True
    assert 0 < summary["predicted_bytes"] < tiny_f32.stat().st_size
    assert "predicted size" in captured.err and "fits" in captured.err  # shown before writing
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["home"]


def test_auto_lets_the_planner_pick_for_the_described_machine(
    model_cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scout = cached_tiny_f32(model_cache_dir, n_experts=16, moe_step=1)  # reads as Scout
    argv = ["quantize", str(scout), str(tmp_path / "o.gguf"), "--recipe", "auto"]
    assert main([*argv, "--ram", "64GB", "--unified", "--dry-run"]) == 0
    err = capsys.readouterr().err
    # the tiny model fits anywhere, so the recipe with the most bits wins
    assert "chose scout-192gb" in err and "unified" in err


def test_bad_input_is_one_clear_line(
    tiny_f32: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["quantize", str(tiny_f32)]) == 2
    assert "needs SRC, OUT and --recipe" in capsys.readouterr().err
    argv = ["quantize", str(tiny_f32), str(tmp_path / "o.gguf"), "--recipe", "nope"]
    assert main(argv) == 2
    assert "no recipe named 'nope'" in capsys.readouterr().err
    argv = ["quantize", str(tmp_path / "missing.gguf"), str(tmp_path / "o.gguf")]
    assert main([*argv, "--recipe", "q4_k_m"]) == 2
    assert "missing.gguf" in capsys.readouterr().err
    argv = ["quantize", str(tiny_f32), str(tmp_path / "o.gguf"), "--recipe", "auto"]
    assert main(argv) == 2  # 4 experts: neither Scout nor Maverick
    assert "recipes are for Llama 4 Scout and Maverick" in capsys.readouterr().err
