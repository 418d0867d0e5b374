"""``herd serve`` as a real subprocess on port 0, and its URL read from the first stdout line.

The server (and so llama.cpp) runs outside the pytest process, as the engine tests require.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120
API_KEY = "test-key-123"


class Server:
    """A running ``python -m app serve MODEL --port 0 ...``."""

    def __init__(self, model: Path, home: Path, *args: str) -> None:
        env = dict(os.environ)
        env["HERD_HOME"] = str(home)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", str(model), "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        assert self.process.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()))
        reader.start()
        reader.join(START_TIMEOUT_S)
        first = line[0] if line else ""
        if not first.startswith("serving http://127.0.0.1:"):
            self.stop()
            pytest.fail(f"no URL line: {first!r}; stderr: {self.stderr}")
        self.first_line = first
        self.url = first.split()[1]  # http://127.0.0.1:PORT/v1
        self.root = self.url.removesuffix("/v1")
        self.stderr = ""

    def stop(self) -> None:
        """Interrupt the server and wait for it; keeps its stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, self.stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, self.stderr = self.process.communicate()


@pytest.fixture(scope="module")
def server(tiny_scout: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on the tiny Scout with an API key, shared by a module's tests."""
    running = Server(tiny_scout, tmp_path_factory.mktemp("home"), "--api-key", API_KEY)
    yield running
    running.stop()
    assert running.process.returncode == 0, running.stderr
    assert API_KEY not in running.stderr
