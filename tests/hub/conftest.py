"""Fixtures for the Hub tests: the local Hub-compatible server and a client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.hub.client import HubClient, HubConfig
from app.core.hub.download import Downloader
from app.core.paths import AppPaths
from tests.hub.hub_repos import gated_repo, scout_repo
from tests.hub.hub_server import FakeHub


@pytest.fixture(scope="session")
def hub_server() -> Iterator[FakeHub]:
    """One server for the session; each test starts with no faults (see ``hub``)."""
    with FakeHub() as hub:
        hub.add(scout_repo())
        hub.add(gated_repo())
        hub.keep_as_baseline()
        yield hub


@pytest.fixture
def hub(hub_server: FakeHub) -> FakeHub:
    """The server, faults and counters reset."""
    hub_server.reset()
    return hub_server


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    """Herd's folders under a temporary directory."""
    return AppPaths.under(tmp_path / "herd").ensure()


@pytest.fixture
def client(hub: FakeHub) -> HubClient:
    """A client for the local server, with no token (never the developer's own)."""
    return HubClient(HubConfig(endpoint=hub.endpoint, token=False))


@pytest.fixture
def downloader(client: HubClient, paths: AppPaths) -> Downloader:
    """A downloader with small chunks and no retry delay, so faults land mid-file."""
    return Downloader(
        client, paths.downloads, paths.hub_cache, chunk=16 << 10, backoff_s=0.01, progress_every_s=0
    )
