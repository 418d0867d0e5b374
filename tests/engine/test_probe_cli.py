"""``herd probe`` as a subprocess: the JSON and PNG it writes, the question, Ctrl+C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from PIL import Image

from app.core.probe.heatmap import heatmap_size
from tests.engine.test_cli import REPO, assert_one_line_failure, herd


def test_probe_prints_json_draws_the_png_and_keeps_the_result(
    tiny_scout: Path, tmp_path: Path
) -> None:
    png = tmp_path / "grid.png"
    result = herd(
        "probe", tiny_scout, "--ctx", "1024", "--lengths", "512,1K", "--depths", "0,100",
        "--yes", "--json", "--png", png, home=tmp_path / "home",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ctx"] == 1024 and data["kv_type"] == "f16" and data["trials"] == 1
    assert data["lengths"] == [512, 1024] and data["depths"] == [0.0, 1.0]
    assert len(data["grid"]) == 2 and all(len(row) == 2 for row in data["grid"])
    assert all(a in (0.0, 1.0) for row in data["grid"] for a in row)
    assert data["complete"] is True and data["seconds"] > 0
    assert 400 <= data["tokens"][0] <= 512
    assert "About " in result.stderr  # the estimate, before the cells
    assert "1,024 is measured at" in result.stderr
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == heatmap_size(2, 2)
    kept = json.loads((tmp_path / "home" / "data" / "probes.json").read_text())
    [records] = kept["models"].values()
    assert records[0]["ctx"] == 1024 and records[0]["kv_type"] == "f16"


def test_probe_without_a_terminal_needs_yes(tiny_scout: Path, tmp_path: Path) -> None:
    result = herd("probe", tiny_scout, "--ctx", "1024", home=tmp_path)
    line = assert_one_line_failure(result)
    assert "--yes" in line and "not a terminal" in line


def test_bad_lengths_are_refused_before_loading(tiny_scout: Path, tmp_path: Path) -> None:
    result = herd("probe", tiny_scout, "--lengths", "1K,lots", "--yes", home=tmp_path)
    assert "'lots' is not a length" in assert_one_line_failure(result)


def test_ctrl_c_stops_and_prints_the_grid_so_far(tiny_scout: Path, tmp_path: Path) -> None:
    env = dict(os.environ, HERD_HOME=str(tmp_path), PYTHONPATH=str(REPO))
    args = ["probe", str(tiny_scout), "--ctx", "1024", "--lengths", "512,1K", "--yes"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "[1/22]" in line:
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "Stopped early" in out
    rows = [ln.split() for ln in out.splitlines() if ln.strip().endswith(("%", "-"))]
    assert any("-" in row for row in rows)  # cells that were not run
    assert not (tmp_path / "data" / "probes.json").exists()  # a partial probe is not kept
