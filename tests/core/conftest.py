"""Core test fixtures: the real Scout layout as a header-only (sparse) GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import real_layouts


@pytest.fixture(scope="session")
def scout_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Llama 4 Scout Q4_K_M's real header and tensor table, its data left sparse."""
    folder = tmp_path_factory.mktemp("layouts")
    if not real_layouts.sparse_files_work(folder):
        pytest.skip("this file system does not keep sparse files")
    return real_layouts.write_header_only(real_layouts.SCOUT_Q4_K_M, folder / "scout.gguf")
