"""``herd plan`` as a script uses it: text, JSON, exit codes, described machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.gguf_rewrite import rewrite_gguf

ROOT = Path(__file__).resolve().parents[2]
ISSUE_KEYS = [
    "model", "fits", "n_ctx", "type_k", "type_v", "swa_full", "n_gpu_layers",
    "cpu_expert_layers", "predicted_decode_tok_s", "devices", "reasons",
]  # fmt: skip


def herd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERD_HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_plan_json_for_a_4090(tmp_path: Path, scout_file: Path) -> None:
    r = herd(tmp_path, "plan", str(scout_file), "--ctx", "131072", "--vram", "24GB",
             "--ram", "64GB", "--gpu-name", "RTX 4090", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert list(plan)[: len(ISSUE_KEYS)] == ISSUE_KEYS
    assert plan["fits"] is True and plan["swa_full"] is False and plan["n_ctx"] == 131072
    assert plan["cpu_expert_layers"] and plan["n_gpu_layers"] == 49
    gpu = plan["devices"][0]
    assert gpu["name"] == "CUDA0" and gpu["kind"] == "gpu" and gpu["capacity"] == 24 * 2**30
    assert set(gpu["planned"]) == {"weights", "experts", "kv", "compute"}
    assert sum(gpu["planned"].values()) <= gpu["capacity"]
    # the small chunked-attention cache: 6,144 + 1,224 MiB at 131,072 tokens
    assert gpu["planned"]["kv"] == (6144 + 1224) * 2**20


def test_plan_text_and_exit_codes(tmp_path: Path, scout_file: Path) -> None:
    fits = herd(tmp_path, "plan", str(scout_file), "--ram", "192GB", "--unified")
    assert fits.returncode == 0, fits.stderr
    assert "Metal" in fits.stdout and "Why" in fits.stdout

    too_small = herd(tmp_path, "plan", str(scout_file), "--ctx", "131072", "--ram", "32GB")
    assert too_small.returncode == 3
    assert "does not fit" in too_small.stdout.lower() or "fits: no" in too_small.stdout.lower()
    as_json = herd(tmp_path, "plan", str(scout_file), "--ctx", "131072", "--ram", "32GB", "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["fits"] is False

    bad = herd(tmp_path, "plan", str(scout_file), "--vram", "24XB", "--ram", "64GB")
    assert bad.returncode == 2 and bad.stderr.startswith("herd: ") and "Traceback" not in bad.stderr
    missing = herd(tmp_path, "plan", str(tmp_path / "nope.gguf"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def _with_arch(src: Path, dst: Path, arch: str) -> Path:
    """Copy a model, every ``llama4.*`` key renamed to ``{arch}.*`` (a plannable file)."""
    return rewrite_gguf(src, dst, arch=arch)


@pytest.mark.parametrize("arch", ["bert", "herdnet", "clip", "llama4-2-layers"])
def test_plan_refuses_what_chat_refuses(
    tmp_path: Path, tiny_scout: Path, tiny_llama4_broken: Path, arch: str
) -> None:
    from app.core.errors import UnsupportedModelError
    from app.core.gguf.info import read_gguf, require_supported

    if arch == "llama4-2-layers":  # no global-attention layer: llama.cpp aborts on it
        model = tiny_llama4_broken
    else:
        model = _with_arch(tiny_scout, tmp_path / f"{arch}.gguf", arch)
    with pytest.raises(UnsupportedModelError) as refused:
        require_supported(read_gguf(model))
    line = f"herd: {refused.value.one_line()}"

    plan = herd(tmp_path, "plan", str(model), "--ram", "64GB")
    chat = herd(tmp_path, "chat", str(model), "--prompt", "hi")
    for r in (plan, chat):
        assert r.returncode == 2 and r.stdout == "", r.stdout + r.stderr
        assert r.stderr.strip().splitlines() == [line]
    as_json = herd(tmp_path, "plan", str(model), "--ram", "64GB", "--json")
    assert as_json.returncode == 2 and as_json.stdout == ""
