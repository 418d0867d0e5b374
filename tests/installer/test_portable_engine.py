"""The portable engine (app/core/engine/backends.py) and what ``herd doctor`` says of it.

The source install's llama.cpp has its backends linked in: nothing to load, no CPU variant.
The bundle build's (``build/venv``, made by installer/build-linux.sh) loads one CPU variant
module, the best this CPU runs; that case is checked when such a build is there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_PYTHON = REPO / "build" / "venv" / "bin" / "python"
BUILT = any(
    (REPO / "build" / "venv").glob("lib/python3*/site-packages/llama_cpp/lib/*ggml-cpu-x64*")
)
_PROBE = """
import json
from app.core.engine import backends, llama_devices
first = backends.load_backends()
again = backends.load_backends()
print(json.dumps({"first": first, "again": again, "variant": backends.cpu_variant(),
                  "modules": [p.name for p in backends.cpu_modules()],
                  "backends": llama_devices.backend_names()}))
"""


def _probe(python: Path | str) -> dict[str, object]:
    done = subprocess.run(
        [str(python), "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_source_install_has_its_backends_built_in():
    found = _probe(sys.executable)
    assert found["first"] is False and found["variant"] == "" and found["modules"] == []
    assert "CPU" in found["backends"]  # type: ignore[operator]


def test_doctor_says_source_install_and_no_cpu_variant(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "app", "doctor", "--json", "--no-bench"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={**os.environ, "HERD_HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["bundle"] is False and report["cpu_variant"] == ""
    assert report["llama_cpp"]["portable_build"] is False


@pytest.mark.skipif(not BUILT, reason="no bundle build here (installer/build-linux.sh)")
def test_the_portable_build_loads_one_cpu_variant_once():
    found = _probe(BUILD_PYTHON)
    assert found["first"] is True and found["again"] is False
    modules = found["modules"]
    assert isinstance(modules, list) and "libggml-cpu-x64.so" in modules
    assert f"libggml-cpu-{found['variant']}.so" in modules  # the one ggml chose, by score
    assert "CPU" in found["backends"] and "RPC" in found["backends"]  # type: ignore[operator]
