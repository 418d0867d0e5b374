"""Engine test fixtures: a home folder, an engine client that must shut down, a small PNG.

Test modules with stricter needs (e.g. checking the process is reaped) define their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from app.core.engine.client import EngineClient
from app.core.engine.engine_config import EngineConfig
from app.core.paths import AppPaths


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "home").ensure()


@pytest.fixture
def client(paths: AppPaths) -> Iterator[EngineClient]:
    engine = EngineClient(paths)
    yield engine
    engine.shutdown()
    assert not engine.alive


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "barn.png"
    img = Image.new("RGB", (64, 48), (180, 20, 20))
    img.paste((40, 160, 40), (0, 30, 64, 48))
    img.save(path)
    return path


@pytest.fixture(scope="session")
def engine_config(tmp_path_factory: pytest.TempPathFactory) -> EngineConfig:
    """How llama.cpp must run on this machine: the app's own self-check, once per run.

    Tests hand it to their child processes (``tests.engine.child``), which load models with
    it, as the engine does; llama.cpp's AMX path, for one, crashes on some Xeons (issue 11).
    """
    from app.core.engine.selfcheck import ensure_checked

    record = ensure_checked(AppPaths.under(tmp_path_factory.mktemp("engine-check")).ensure())
    if record.chosen is None:
        pytest.fail(f"llama.cpp decodes in no configuration on this machine: {record.cause}")
    return record.chosen
