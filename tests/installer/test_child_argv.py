"""Herd's child processes from a source tree and from a bundle (app/core/child_argv.py).

In a bundle ``sys.executable`` is the ``herd`` program: the children go through
``app.__main__.main``, which must run them before any argument parsing. That dispatch is
run here for real, in a fresh Python, as the bundle runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.core import child_argv

REPO = Path(__file__).resolve().parents[2]


def _as_bundle(*flags: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """``herd FLAGS`` as a bundle would run it: ``main`` with the flags as its argv."""
    code = f"import sys; from app.__main__ import main; sys.exit(main({list(flags)!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_from_source_a_child_is_python_dash_m():
    assert child_argv.python_module_argv("app.core.engine.worker", "log") == [
        sys.executable, "-m", "app.core.engine.worker", "log"
    ]  # fmt: skip
    isolated = child_argv.python_call_argv("app.core.chat.template_probe", "main")
    assert isolated[:3] == [sys.executable, "-I", "-c"]
    assert repr(str(REPO)) in isolated[3]  # this very copy of Herd, first on the path


def test_in_a_bundle_a_child_is_the_herd_program_with_a_hidden_flag(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/Herd/herd")
    assert child_argv.is_bundle()
    assert child_argv.python_module_argv("app.core.engine.worker", "log") == [
        "/opt/Herd/herd", child_argv.MODULE_FLAG, "app.core.engine.worker", "log"
    ]  # fmt: skip
    assert child_argv.python_call_argv("m", "f") == ["/opt/Herd/herd", child_argv.CALL_FLAG, "m:f"]
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(sys, "executable", str(Path("C:/Herd/herdw.exe")))
    assert Path(child_argv.python_module_argv("x")[0]).name == "herd.exe"  # a console program


def test_main_runs_a_module_child_with_its_own_arguments():
    done = _as_bundle(child_argv.MODULE_FLAG, "json.tool", "--compact", stdin='{"a": [1, 2]}')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '{"a":[1,2]}'


def test_main_runs_the_template_probe_child():
    request = {"template": "{{ greeting }}, {{ name }}!", "context": {"greeting": "Hello"}}
    request["context"]["name"] = "Herd"
    done = _as_bundle(child_argv.CALL_FLAG, "app.core.chat.template_probe:main",
                      stdin=json.dumps(request))  # fmt: skip
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout.strip().splitlines()[-1])
    assert verdict["verdict"] == "rendered"
    assert verdict["fields"][0] == "Hello, Herd!"


@pytest.mark.parametrize("argv", [[], ["chat", "x.gguf"], [child_argv.MODULE_FLAG]])
def test_anything_else_is_no_child(argv):
    assert child_argv.run_child(argv) is None
