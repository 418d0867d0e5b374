"""`herd worker`'s refusals and Herd's info port, without llama.cpp."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.hardware.workers import (
    InfoServer,
    WorkerError,
    answering,
    ask_worker,
    parse_endpoints,
)

ROOT = Path(__file__).resolve().parents[2]


def _herd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERD_HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_a_worker_beyond_loopback_needs_the_flag(tmp_path: Path, host: str) -> None:
    r = _herd(tmp_path, "worker", "--host", host, "--port", "50999")
    assert r.returncode == 2
    assert "no password and no encryption" in r.stderr
    assert "--i-understand-this-is-unauthenticated" in r.stderr and "SSH tunnel" in r.stderr
    assert "worker ready" not in r.stdout


def test_endpoints_are_checked() -> None:
    assert parse_endpoints("a:1, b:2,a:1") == ("a:1", "b:2")
    for bad in ("nohost", "h:port", ":50052", "h:70000"):
        with pytest.raises(WorkerError):
            parse_endpoints(bad)


def test_the_info_port_answers_and_measures_the_link() -> None:
    info = {"protocol": "7.0.0", "devices": [
        {"index": 0, "name": "CPU", "description": "a CPU", "kind": "cpu",
         "total": 1 << 30, "free": 1 << 29},
    ]}  # fmt: skip
    server = InfoServer(("127.0.0.1", 0), info)
    port = server.server_address[1]
    server.serve_in_background()
    try:
        worker = ask_worker(f"127.0.0.1:{port - 1}")
        assert worker.endpoint == f"127.0.0.1:{port - 1}" and worker.protocol == "7.0.0"
        assert worker.devices[0].free_bytes == 1 << 29
        assert 0 < worker.rtt_s < 0.5 and worker.bytes_per_s > 1e6
        assert answering([f"127.0.0.1:{port - 1}"]) == ([f"127.0.0.1:{port - 1}"], [])
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(WorkerError, match="does not answer"):
        ask_worker(f"127.0.0.1:{port - 1}", timeout=1.0)


def test_the_next_load_plans_without_a_silent_worker() -> None:
    from app.core.hardware.spec import profile
    from app.core.load import LoadRequest, plan_on
    from tests.fixtures.real_layouts import scout_q4_k_m

    info = scout_q4_k_m()
    with socket.socket() as s:  # a port nobody listens on: a worker that died
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    request = LoadRequest(info.path, hardware=profile("rtx4090-64gb"), rpc=(dead,))
    planned = plan_on(None, info, request)  # type: ignore[arg-type]  # described: no engine
    assert planned.plan.rpc_servers == () and planned.settings.rpc_servers == ()
    assert any(f"The worker {dead} does not answer" in r and "Planned without it" in r
               for r in planned.plan.reasons)  # fmt: skip
