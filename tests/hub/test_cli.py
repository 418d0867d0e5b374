"""``herd pull`` and ``herd models`` against the local Hub server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.__main__ import main
from tests.hub.hub_server import TOKEN

SCOUT = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF"
GATED = "herd-test/Gated-Llama-4-GGUF"


@pytest.fixture
def herd_env(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HERD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # never the developer's token
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "home"


def test_pull_prints_progress_on_stderr_and_the_path_on_stdout(hub, herd_env, capsys):
    assert main(["pull", SCOUT, "--quant", "Q4_K_M"]) == 0
    out, err = capsys.readouterr()
    path = Path(out.strip())
    assert path.name.endswith("Q4_K_M-00001-of-00002.gguf") and path.is_file()
    assert str(herd_env) in out
    assert "%" in err and "Q4_K_M" in err
    f = hub.repos[SCOUT].files[path.relative_to(path.parents[1]).as_posix()]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256

    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["parts"] == 2 and rows[0]["quant"] == "Q4_K_M"
    assert rows[0]["path"] == str(path) and rows[0]["projector"].endswith("mmproj-F16.gguf")
    assert main(["models"]) == 0
    assert "Q4_K_M" in capsys.readouterr().out


def test_pull_list_shows_quants_and_verdicts(herd_env, capsys):
    assert main(["pull", SCOUT, "--list"]) == 0
    out = capsys.readouterr().out
    assert "Q4_K_M" in out and "Q8_0" in out and "2 parts" in out
    assert out.count("*") == 1  # one recommendation


def test_pull_without_quant_takes_the_recommended_one(herd_env, capsys):
    assert main(["pull", SCOUT, "--no-projector"]) == 0
    out, err = capsys.readouterr()
    assert "choosing" in err
    assert out.strip().endswith(".gguf")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["pull", "not-a-repo"], "owner/name"),
        (["pull", "nobody/missing-GGUF"], "not found"),
        (["pull", SCOUT, "--quant", "Q2_K"], "Available quants: Q4_K_M, Q8_0"),
        (["pull", GATED, "--quant", "Q4_K_M"], "gated"),
    ],
)
def test_pull_errors_are_one_line_and_exit_2(herd_env, capsys, argv, words):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines[-1].startswith("herd: ") and words in lines[-1]
    assert captured.out == ""


def test_pull_gated_with_hf_token(herd_env, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["pull", GATED, "--quant", "Q4_K_M"]) == 0
    assert capsys.readouterr().out.strip().endswith("Gated-Q4_K_M.gguf")


def test_pull_offline_uses_only_the_cache(herd_env, capsys):
    assert main(["pull", SCOUT, "--quant", "Q8_0"]) == 0
    first = capsys.readouterr().out
    assert main(["pull", SCOUT, "--quant", "Q8_0", "--offline"]) == 0
    assert capsys.readouterr().out == first
    assert main(["pull", SCOUT, "--quant", "Q4_K_M", "--offline"]) == 2
    assert "is not downloaded" in capsys.readouterr().err


def test_models_when_empty(herd_env, capsys):
    assert main(["models"]) == 0
    assert "herd pull" in capsys.readouterr().err


def test_ctrl_c_pauses_and_the_same_command_resumes(hub, herd_env, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    env = dict(os.environ)
    argv = [sys.executable, "-m", "app", "pull", SCOUT, "--quant", "Q8_0", "--no-projector"]
    hub.faults.stall = threading.Event()
    hub.faults.stall.set()  # the body stops after its first block
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    downloads = herd_env / "data" / "downloads"
    deadline = time.monotonic() + 30
    while not any(p.stat().st_size for p in downloads.glob("*.part")):
        assert time.monotonic() < deadline, proc.communicate(timeout=5)
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    hub.faults.stall.clear()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"paused" in err and out == b""
    kept = sum(p.stat().st_size for p in downloads.glob("*.part"))
    assert kept > 0

    hub.reset()
    done = subprocess.run(argv, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.decode().strip())
    name = "Llama-4-Scout-17B-16E-Instruct-Q8_0.gguf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hub.repos[SCOUT].files[name].sha256
    assert hub.sent[name] <= hub.repos[SCOUT].files[name].size - kept + (64 << 10)


def test_pull_list_plan_asks_the_planner(herd_env, capsys):
    assert main(["pull", SCOUT, "--list", "--plan"]) == 0
    out = capsys.readouterr().out
    # the test repo's files have no layers: the estimate stays, and says why
    assert out.count("(estimate; planner:") == 2 and "no layers" in out


def test_pull_list_plan_on_a_real_layout(hub, herd_env, capsys, model_cache_dir):
    from tests.fixtures import real_layouts
    from tests.hub.hub_server import HubFile, HubRepo

    if not real_layouts.sparse_files_work(model_cache_dir):
        pytest.skip("this file system does not keep sparse files")
    path = real_layouts.ensure_header_only(real_layouts.SCOUT_Q4_K_M, model_cache_dir)
    name = "Llama-4-Scout-17B-16E-Instruct-Q4_K_M.gguf"
    hub.add(HubRepo("herd-test/Real-Cli-GGUF", {name: HubFile(name, path=path, sha256="cd" * 32)}))
    assert main(["pull", "herd-test/Real-Cli-GGUF", "--list", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "Q4_K_M" in out and "(planner)" in out


def test_pull_takes_a_search_term_and_lists_what_matches(herd_env, capsys):
    assert main(["pull", "scout"]) == 2  # nothing downloaded: a choice is needed
    out, err = capsys.readouterr()
    assert SCOUT in out.splitlines()  # the test Hub's repository that matches
    assert "no repository is 'scout'; these match it" in err and "herd pull OWNER/NAME" in err
    assert not any((herd_env).rglob("*.gguf"))


def test_pull_of_a_missing_repository_searches_for_its_words(herd_env, capsys):
    assert main(["pull", "herd-test/no-such-repo-at-all"]) == 2
    err = capsys.readouterr().err
    assert "herd-test/no-such-repo-at-all was not found on the Hub" in err
    assert "Try a word like scout" in err
