"""Quantizations that cannot finish say why in plain words, and leave nothing half written.

A corrupt source (cut short, or a NaN llama.cpp's data check finds), a missing imatrix
entry, a full disk (the pre-check, and a real ENOSPC in the child: a small tmpfs where
mounting is allowed, and /dev/full anywhere on Linux), a cancelled job and Ctrl+C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.core.engine.quantizer import QuantizeCancelled, QuantizeProgress
from app.core.errors import ModelFileError
from app.core.gguf.info import read_gguf
from app.core.jobs import CancelToken
from quantize import job
from quantize.imatrix import ImatrixError
from quantize.job import QuantizeError, QuantizeRequest, plan_quantize, run_quantize
from quantize.recipe import recipe_named
from tests.engine.test_quantize import quantize_to
from tests.fixtures.tiny_llama4_f32 import cached_tiny_f32, imatrix_for, write_imatrix_gguf

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def tiny_f32(model_cache_dir: Path) -> Path:
    return cached_tiny_f32(model_cache_dir)


@pytest.fixture(scope="module")
def tiny_imatrix(tiny_f32: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("imatrix")
    return write_imatrix_gguf(folder / "tiny.imatrix.gguf", imatrix_for(tiny_f32))


def _left(folder: Path, keep: set[Path] = frozenset()) -> list[str]:  # type: ignore[assignment]
    return sorted(p.name for p in folder.iterdir() if p not in keep and p.suffix != ".log")


def test_a_source_cut_short_is_refused_before_anything_runs(
    tiny_f32: Path,
    tmp_path: Path,
) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_f32.read_bytes()[: tiny_f32.stat().st_size // 2])
    with pytest.raises(ModelFileError) as err:
        quantize_to(cut, tmp_path / "out.gguf", "scout-24gb-gpu")
    assert "cut.gguf" in err.value.user_message
    assert _left(tmp_path) == ["cut.gguf"]


def test_an_already_quantized_source_is_refused(tmp_path: Path) -> None:
    from tests.fixtures.tiny_llama4 import make_tiny_llama4

    q8 = make_tiny_llama4(tmp_path / "q8.gguf")
    with pytest.raises(QuantizeError, match=r"already quantized \(Q8_0\)") as err:
        quantize_to(q8, tmp_path / "out.gguf", "scout-24gb-gpu")
    assert "BF16" in err.value.hint
    assert _left(tmp_path) == ["q8.gguf"]


def test_a_nan_in_the_source_fails_in_llama_cpp_with_its_reason(
    tiny_f32: Path,
    tmp_path: Path,
) -> None:
    bad = tmp_path / "nan.gguf"
    shutil.copyfile(tiny_f32, bad)
    info = read_gguf(bad)
    tensor = next(t for t in info.tensors if t.name == "blk.1.attn_q.weight")
    with bad.open("r+b") as f:
        f.seek(info.file_offset(tensor) + 64)
        f.write(np.array([np.nan] * 4, dtype=np.float32).tobytes())
    with pytest.raises(QuantizeError) as err:
        quantize_to(bad, tmp_path / "out.gguf", "scout-24gb-gpu")
    assert "blk.1.attn_q.weight" in err.value.user_message
    assert err.value.log_path and Path(err.value.log_path).is_file()
    assert _left(tmp_path) == ["nan.gguf"]


def test_a_missing_imatrix_entry_is_named(
    tiny_f32: Path,
    tmp_path: Path,
) -> None:
    entries = imatrix_for(tiny_f32)
    del entries["blk.3.ffn_down_exps.weight"]
    imatrix = write_imatrix_gguf(tmp_path / "gap.imatrix.gguf", entries)
    with pytest.raises(ImatrixError) as err:
        quantize_to(tiny_f32, tmp_path / "out.gguf", "maverick-192gb", imatrix)
    assert "blk.3.ffn_down_exps.weight" in err.value.user_message
    assert "IQ3_XXS" in err.value.user_message
    assert _left(tmp_path) == ["gap.imatrix.gguf"]


def test_a_very_low_bit_recipe_without_imatrix_says_so(
    tiny_f32: Path,
    tmp_path: Path,
) -> None:
    with pytest.raises(QuantizeError, match="importance matrix: give --imatrix"):
        quantize_to(tiny_f32, tmp_path / "out.gguf", "maverick-mac-128gb")
    assert _left(tmp_path) == []


def test_too_little_disk_space_is_found_first(
    tiny_f32: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    free = shutil.disk_usage(tmp_path).free
    monkeypatch.setattr(job, "DISK_SLACK", free)  # the output now needs more than is free
    with pytest.raises(QuantizeError, match="Not enough disk space") as err:
        quantize_to(tiny_f32, tmp_path / "out.gguf", "scout-24gb-gpu")
    assert "free" in err.value.user_message and err.value.hint
    assert _left(tmp_path) == []


@contextlib.contextmanager
def _small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.parametrize("full", ["tmpfs", "dev-full"])
def test_a_disk_that_fills_up_while_writing(
    tiny_f32: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    full: str,
) -> None:
    # the pre-check is told there is room, so llama.cpp itself hits ENOSPC
    monkeypatch.setattr(job, "DISK_SLACK", -(1 << 40))
    with contextlib.ExitStack() as stack:
        if full == "tmpfs":
            folder = stack.enter_context(_small_tmpfs(tmp_path / "small", "2m"))
        else:
            if not Path("/dev/full").exists():
                pytest.skip("no /dev/full")
            folder = tmp_path
            (folder / "out.gguf.partial").symlink_to("/dev/full")
        with pytest.raises(QuantizeError) as err:
            quantize_to(tiny_f32, folder / "out.gguf", "scout-24gb-gpu", log_dir=tmp_path)
        assert "disk filled up" in err.value.user_message
        assert "free some space" in err.value.hint
        assert _left(folder) == []


def test_cancel_stops_the_child_and_deletes_the_partial_file(
    tiny_f32: Path,
    tiny_imatrix: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.gguf"
    req = QuantizeRequest(
        tiny_f32, out, recipe_named("maverick-mac-128gb"), imatrix=tiny_imatrix, threads=1
    )
    cancel = CancelToken()
    events = []
    for event in run_quantize(plan_quantize(req), cancel, log_path=tmp_path / "q.log"):
        events.append(event)
        if isinstance(event, QuantizeProgress):
            cancel.cancel()
    assert isinstance(events[-1], QuantizeCancelled)
    assert _left(tmp_path) == []


def test_ctrl_c_in_the_terminal_cancels_and_cleans_up(
    tiny_f32: Path,
    tiny_imatrix: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.gguf"
    env = {**os.environ, "HERD_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "app", "quantize", str(tiny_f32), str(out)]
    argv += ["--recipe", "maverick-mac-128gb", "--imatrix", str(tiny_imatrix), "--threads", "1"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 60
    while b"%" not in seen and time.monotonic() < deadline:  # the first progress line
        chunk = proc.stderr.read1(4096)
        if not chunk:
            break
        seen += chunk
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[1]
    text = (seen + rest).decode()
    assert proc.returncode == 130, text
    assert "cancelled" in text
    assert _left(tmp_path, {tmp_path / "home"}) == []
