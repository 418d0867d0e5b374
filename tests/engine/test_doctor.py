"""``herd doctor``: the real command, in a child process, on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.core.engine import selfcheck
from app.core.engine.engine_config import CheckRecord, write_record
from app.core.paths import AppPaths

KEYS = {"version", "llama_cpp", "cpu", "memory", "devices", "self_check", "paths", "bench"}


def _doctor(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HERD_HOME": str(home), **env},
    )


def test_doctor_json_reports_a_working_engine_and_benchmarks_it(tmp_path: Path) -> None:
    done = _doctor(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) >= KEYS
    assert report["llama_cpp"]["llama_cpp_python"] == "0.3.36"
    assert "CPU" in report["llama_cpp"]["backends"]
    assert report["cpu"]["cores"] >= 1 and report["cpu"]["llama_cpp_features"]
    assert report["memory"]["ram_total_bytes"] > 0
    assert any(d["name"] == "CPU" for d in report["devices"]["llama_cpp"])
    check = report["self_check"]
    assert check["works"] and check["chosen"] == check["attempts"][-1]["config"]
    assert check["attempts"][-1]["ok"]
    assert report["paths"]["state"] == str(tmp_path / "state")
    bench = report["bench"]
    assert bench["decode_tok_s"] > 0 and bench["prompt_tok_s"] > 0, bench


def test_doctor_text_names_the_fallback(tmp_path: Path) -> None:
    done = _doctor(tmp_path, "--no-bench", HERD_TEST_CRASH_REPACKED_DECODE="1")
    assert done.returncode == 0, done.stderr
    assert "FAIL        default: crashed (SIGSEGV)" in done.stdout
    assert "pass        no-repack: decoded 4 tokens" in done.stdout
    assert "chosen      no-repack" in done.stdout
    assert "benchmark     skipped: --no-bench" in done.stdout


def test_doctor_exits_1_when_nothing_works(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path).ensure()
    cause = "llama.cpp cannot decode on this machine in any configuration (default: crashed)."
    record = CheckRecord(selfcheck.machine_fingerprint(), (), None, cause, 0.0, 0.0)
    write_record(paths.state, record)
    done = _doctor(tmp_path, "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["self_check"]["works"] is False
    assert report["bench"] == {"skipped": "the engine does not work on this machine"}
    assert cause in done.stderr
