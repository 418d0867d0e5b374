"""The real ``herd`` command line, run as a subprocess: output, exit codes, failure lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120
# llama.cpp log prefixes that must never reach the terminal
LLAMA_LOG_MARKERS = ("llama_model_loader", "ggml", "load_tensors", "llama_", "llm_load")


def herd(
    *args: str | os.PathLike[str],
    home: Path,
    stdin: str | None = None,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m app ARGS`` with its own HERD_HOME; never inherits the terminal."""
    full_env = dict(os.environ if env is None else env)
    full_env["HERD_HOME"] = str(home)
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), full_env.get("PYTHONPATH")) if p
    )
    return subprocess.run(
        [sys.executable, "-m", "app", *map(str, args)],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=TIMEOUT_S,
    )


def assert_one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """Exit code 2, one ``herd: `` line on stderr, no traceback; returns that line."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("herd: "), result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    return lines[0]


# -- herd info -----------------------------------------------------------------------
def test_info_describes_scout(tiny_scout: Path, tmp_path: Path) -> None:
    result = herd("info", tiny_scout, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "llama4" in out
    assert "16 routed" in out
    assert "shared expert: yes" in out
    assert any(line.split() == ["layers", "4"] for line in out.splitlines()), out


@pytest.mark.parametrize(("model", "routed"), [("tiny_scout", 16), ("tiny_maverick", 128)])
def test_info_json(model: str, routed: int, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(model)
    result = herd("info", path, "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["architecture"] == "llama4"
    assert facts["parameters"] > 0
    assert facts["experts"]["routed"] == routed
    assert facts["experts"]["shared"] == 1
    assert facts["layers"] == 4
    assert facts["quant"]
    assert facts["file_size"] == path.stat().st_size
    assert facts["context_length"] > 0
    assert facts["chat_template"] is True
    assert facts["projector"] is None


# -- herd chat -----------------------------------------------------------------------
def test_chat_one_prompt_tiny_scout(tiny_scout: Path, tmp_path: Path) -> None:
    result = herd(
        "chat", tiny_scout, "--prompt", "hi", "--max-tokens", "8", "--seed", "1", home=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "Traceback" not in result.stderr


def test_chat_smollm2_keeps_llama_log_off_the_terminal(smollm2_gguf: Path, tmp_path: Path) -> None:
    result = herd(
        "chat", smollm2_gguf,
        "--prompt", "What is the capital of France?",
        "--max-tokens", "30", "--seed", "1",
        home=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    for marker in LLAMA_LOG_MARKERS:
        assert marker not in result.stderr, result.stderr
    # all that may reach stderr: herd's own lines and the speed line of a cut-off reply
    for line in result.stderr.splitlines():
        assert line.startswith(("herd: ", "[")), result.stderr
    assert (tmp_path / "logs").is_dir()  # llama.cpp's log went to the engine log instead


def test_chat_interactive_two_turns(tiny_scout: Path, tmp_path: Path) -> None:
    result = herd(
        "chat", tiny_scout, "--max-tokens", "8", "--seed", "1", "--stats",
        home=tmp_path, stdin="hello\nsecond\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.count("> ") >= 3  # a prompt per turn, and one that meets EOF
    speed_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("[")]
    assert len(speed_lines) == 2, result.stderr  # --stats: one line per reply


def test_chat_refuses_model_that_crashes_llama_cpp(
    tiny_llama4_broken: Path, tmp_path: Path
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = herd("chat", tiny_llama4_broken, "--prompt", "hi", home=tmp_path, cwd=cwd)
    line = assert_one_line_failure(result)
    assert "layers" in line
    assert not list(cwd.iterdir())  # no core dump, nothing else left behind


# -- bad inputs ----------------------------------------------------------------------
def _write_gguf(path: Path, arch: str) -> Path:
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(f"tiny {arch}")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _bad_file(kind: str, folder: Path, scout: Path) -> Path:
    path = folder / f"{kind}.gguf"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
    elif kind == "text":
        path.write_text("This is a README, not a model.\n" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = scout.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "bad_magic":
        path.write_bytes(b"GGUX" + scout.read_bytes()[4:])
    elif kind in ("bert", "clip"):
        _write_gguf(path, kind)
    else:
        raise AssertionError(kind)
    return path


BAD_KINDS = ["missing", "directory", "text", "empty", "truncated", "bad_magic", "bert", "clip"]
EXPECTED_WORDS = {
    "missing": "not found",
    "directory": "folder",
    "text": "not a GGUF",
    "empty": "empty",
    "truncated": "truncated",
    "bad_magic": "not a GGUF",
    "bert": "bert",
    "clip": "projector",
}


@pytest.mark.parametrize("command", ["info", "chat"])
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_model_is_one_line_and_exit_2(
    kind: str, command: str, tiny_scout: Path, tmp_path: Path
) -> None:
    path = _bad_file(kind, tmp_path, tiny_scout)
    extra = ["--prompt", "hi"] if command == "chat" else []
    result = herd(command, path, *extra, home=tmp_path / "home")
    line = assert_one_line_failure(result)
    assert EXPECTED_WORDS[kind] in line
    if command == "info" and kind in ("bert", "clip"):
        assert f"architecture   {kind}" in result.stdout  # readable: described, then refused
    else:
        assert result.stdout.strip() == ""


# -- the window ----------------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is Linux's")
def test_gui_without_display_says_so(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}
    }
    result = herd(home=tmp_path, env=env)
    line = assert_one_line_failure(result)
    assert "display" in line.lower()
