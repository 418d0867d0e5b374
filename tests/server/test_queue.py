"""One engine, one request at a time: a bounded line, 503 beyond it, disconnects free it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.server.conftest import REPO, Server

# Greedy decoding on the tiny Scout runs thousands of tokens before an end of turn
# (seconds), so the first request is still generating while the others arrive.
LONG = {
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 16000,
    "temperature": 0,
    "stream": True,
}
SHORT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "seed": 1}
DEADLINE_S = 10


@pytest.fixture(scope="module")
def server(tiny_scout: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tiny_scout, tmp_path_factory.mktemp("home"), "--queue-size", "1")
    yield running
    running.stop()
    assert running.process.returncode == 0, running.stderr


def _health(server: Server) -> dict[str, object]:
    answer = httpx.get(f"{server.root}/health", timeout=10)
    health: dict[str, object] = answer.json()
    return health


def _until(condition: object, what: str) -> None:
    assert callable(condition)
    end = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < end, f"timed out waiting until {what}"
        time.sleep(0.02)


def test_line_then_busy_then_disconnect_frees_the_engine(server: Server) -> None:
    url = f"{server.url}/chat/completions"
    second: list[httpx.Response] = []
    with httpx.Client(timeout=60) as first_client:
        with first_client.stream("POST", url, json=LONG) as first:
            assert first.status_code == 200
            lines = first.iter_lines()
            assert next(lines).startswith("data: ")  # it is generating now
            waiter = threading.Thread(
                target=lambda: second.append(httpx.post(url, json=SHORT, timeout=60))
            )
            waiter.start()
            _until(lambda: _health(server)["waiting"] == 1, "the second request waits")
            assert not second  # it waits for the engine

            third = httpx.post(url, json=SHORT, timeout=10)
            assert third.status_code == 503
            assert int(third.headers["retry-after"]) > 0
            assert third.json()["error"]["code"] == "server_busy"
            stopped_at = time.monotonic()
        # the first client went away mid-stream: its generation stops, the next one runs
    waiter.join(DEADLINE_S)
    assert second and second[0].status_code == 200, second
    assert time.monotonic() - stopped_at < 5  # far less than the long reply would take
    assert second[0].json()["usage"]["completion_tokens"] >= 1
    _until(lambda: _health(server)["busy"] is False, "the engine is free")


def test_listening_beyond_loopback_needs_a_key(tiny_scout: Path, tmp_path: Path) -> None:
    env = dict(os.environ, HERD_HOME=str(tmp_path), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", str(tiny_scout), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("herd: "), result.stderr
    assert "--api-key" in lines[0]


def test_a_client_that_leaves_a_whole_reply_stops_it(server: Server) -> None:
    url = f"{server.url}/chat/completions"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json={**LONG, "stream": False}, timeout=httpx.Timeout(10, read=0.5))
    left_at = time.monotonic()
    answer = httpx.post(url, json=SHORT, timeout=60)
    assert answer.status_code == 200
    assert time.monotonic() - left_at < 5  # far less than the long reply would take
