"""``herd chat`` plans as ``herd plan`` does: same flags, same settings, exit 3 when too big."""

from __future__ import annotations

import json
from pathlib import Path

from app.core.model_wishes import WISHES_FILE, ModelWishes, WishStore
from app.core.paths import AppPaths
from tests.core.test_plan_cli import herd

SETTINGS_KEYS = {
    "n_ctx", "n_gpu_layers", "type_k", "type_v", "swa_full", "flash_attn", "tensor_split",
    "overrides", "n_threads", "use_mmap",
}  # fmt: skip
MACHINE = ("--vram", "24GB", "--ram", "64GB", "--gpu-name", "RTX 4090")


def test_dry_run_json_is_the_plan_herd_plan_prints(tmp_path: Path, scout_file: Path) -> None:
    chat = herd(tmp_path, "chat", str(scout_file), "--dry-run", "--json", "--ctx", "65536",
                "--kv", "q8_0", *MACHINE)  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    settings = json.loads(chat.stdout)
    assert set(settings) >= SETTINGS_KEYS
    plan = json.loads(
        herd(
            tmp_path, "plan", str(scout_file), "--json", "--ctx", "65536", "--kv", "q8_0", *MACHINE
        ).stdout  # fmt: skip
    )
    assert settings["cpu_expert_layers"] == plan["cpu_expert_layers"] != []
    assert settings["n_ctx"] == plan["n_ctx"] == 65536
    assert settings["type_k"] == settings["type_v"] == "q8_0"
    assert settings["n_gpu_layers"] == plan["n_gpu_layers"]
    assert settings["overrides"] == plan["tensor_overrides"]
    assert all(device == "CPU" for _, device in settings["overrides"])
    assert settings["n_threads"] == plan["n_threads"]
    assert settings["swa_full"] is False and settings["flash_attn"] is True


def test_two_gpus_split_the_layers(tmp_path: Path, scout_file: Path) -> None:
    chat = herd(tmp_path, "chat", str(scout_file), "--dry-run", "--json",
                "--vram", "24GB", "--vram", "24GB", "--ram", "128GB")  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    split = json.loads(chat.stdout)["tensor_split"]
    assert len(split) == 2 and all(n > 0 for n in split)


def test_a_model_that_does_not_fit_is_refused_before_loading(
    tmp_path: Path, scout_file: Path
) -> None:
    dry = herd(tmp_path, "chat", str(scout_file), "--dry-run", "--json", "--ram", "16GB")
    assert dry.returncode == 3 and json.loads(dry.stdout)["fits"] is False
    chat = herd(tmp_path, "chat", str(scout_file), "--prompt", "hi", "--ram", "16GB")
    assert chat.returncode == 3
    assert "does not fit this machine" in chat.stderr and "Nothing was loaded" in chat.stderr
    engine_log = AppPaths.under(tmp_path).engine_log
    assert not engine_log.exists() or "load_tensors" not in engine_log.read_text()


def test_show_plan_prints_the_plan_to_stderr(tmp_path: Path, scout_file: Path) -> None:
    chat = herd(tmp_path, "chat", str(scout_file), "--prompt", "hi", "--ram", "16GB",
                "--show-plan")  # fmt: skip
    assert chat.stderr.startswith("Plan: all on the CPU")
    assert "Memory (W weights" in chat.stderr and chat.stdout == ""


def test_the_models_own_wishes_apply_and_flags_win(tmp_path: Path, scout_file: Path) -> None:
    paths = AppPaths.under(tmp_path).ensure()
    WishStore(paths.config / WISHES_FILE).set(scout_file, ModelWishes(n_ctx=16384, kv_type="q8_0"))
    kept = json.loads(
        herd(tmp_path, "chat", str(scout_file), "--dry-run", "--json", *MACHINE).stdout
    )
    assert kept["n_ctx"] == 16384 and kept["type_k"] == "q8_0"
    flag = herd(tmp_path, "chat", str(scout_file), "--dry-run", "--json", "--ctx", "8192", *MACHINE)
    assert json.loads(flag.stdout)["n_ctx"] == 8192
    plan = herd(tmp_path, "plan", str(scout_file), "--json", *MACHINE)
    assert json.loads(plan.stdout)["n_ctx"] == 16384  # herd plan plans the same load
