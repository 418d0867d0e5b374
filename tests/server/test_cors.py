"""CORS is off unless ``--cors ORIGIN`` allows a page's origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.server.conftest import Server

ALLOWED = "http://localhost:3000"


@pytest.fixture(scope="module")
def server(tiny_scout: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tiny_scout, tmp_path_factory.mktemp("home"), "--cors", ALLOWED)
    yield running
    running.stop()
    assert running.process.returncode == 0, running.stderr


def _preflight(server: Server, origin: str) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    return httpx.options(f"{server.url}/chat/completions", headers=headers, timeout=10)


def test_the_allowed_origin_may_call(server: Server) -> None:
    answer = _preflight(server, ALLOWED)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    models = httpx.get(f"{server.url}/models", headers={"Origin": ALLOWED}, timeout=10)
    assert models.headers["access-control-allow-origin"] == ALLOWED


def test_other_origins_may_not(server: Server) -> None:
    answer = _preflight(server, "http://evil.example")
    assert "access-control-allow-origin" not in answer.headers
    models = httpx.get(f"{server.url}/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in models.headers
