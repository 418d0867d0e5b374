"""Screenshots of the Model Manager, offscreen, against the local Hub server, light and dark.

    .venv/bin/python bench/model_manager_screenshots.py [OUT_DIR] [--only NAME ...]

Serves Llama 4 repositories from ``tests/hub/hub_server.py``: unsloth's Scout with seven
quants whose files are header-only real tensor layouts (so the planner judges every row
from its headers, as it does for the real Hub), and Maverick with about the real sizes.
Scenes: ``scout`` on an RTX 4090 with 64 GB; ``scout-mac`` on an M4 Max 64 GB;
``maverick-small`` (nothing fits an RTX 4090 with 64 GB); ``failed`` (a repository the Hub
does not have); ``search``. Each at 1280 x 800 and 1600 x 1000, light and dark, saved as
``models-<scene>-<width>[-dark].png`` into OUT_DIR (default: ``screenshots/``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import LlamaFileType  # noqa: E402
from PySide6.QtGui import QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication, QStyleFactory  # noqa: E402

from app.core.hardware.spec import profile  # noqa: E402
from app.core.hub.service import HubService  # noqa: E402
from app.core.paths import AppPaths  # noqa: E402
from app.ui.models.model_manager import ModelManagerDialog  # noqa: E402
from app.ui.theme import dark_palette, light_palette  # noqa: E402
from tests.fixtures import real_layouts  # noqa: E402
from tests.fixtures.real_layouts import Layout  # noqa: E402
from tests.hub.hub_repos import (  # noqa: E402
    MAVERICK_SIZES,
    HubFile,
    HubRepo,
    gguf_bytes,
    showcase_repo,
)
from tests.hub.hub_server import FakeHub  # noqa: E402

log = logging.getLogger("model_manager_screenshots")
SIZES = ((1280, 800), (1600, 1000))
SCOUT = "unsloth/Llama-4-Scout-17B-16E-Instruct-GGUF"
MAVERICK = "unsloth/Llama-4-Maverick-17B-128E-Instruct-GGUF"
STEM = "Llama-4-Scout-17B-16E-Instruct"


def _experts(kind: Q, rest: Q = Q.Q4_K) -> Callable[[str, int, int, int], Q]:
    return lambda stem, layer, i_down, n_down: kind if stem.endswith("_exps") else rest


def _uniform(kind: Q) -> Callable[[str, int, int, int], Q]:
    return lambda stem, layer, i_down, n_down: kind


F = LlamaFileType
SCOUT_QUANTS: dict[str, Layout] = {
    "UD-IQ1_S": Layout("scout-iq1_s", STEM, 16, 1, 10_485_760, F.MOSTLY_IQ1_S, _experts(Q.IQ1_S)),
    "UD-IQ2_XXS": real_layouts.SCOUT_IQ2,
    "UD-Q3_K_XL": Layout("scout-q3_k", STEM, 16, 1, 10_485_760, F.MOSTLY_Q3_K_M, _experts(Q.Q3_K)),
    "Q4_K_M": real_layouts.SCOUT_Q4_K_M,
    "Q5_K_M": Layout("scout-q5_k", STEM, 16, 1, 10_485_760, F.MOSTLY_Q5_K_M, _uniform(Q.Q5_K)),
    "Q6_K": Layout("scout-q6_k", STEM, 16, 1, 10_485_760, F.MOSTLY_Q6_K, _uniform(Q.Q6_K)),
    "Q8_0": Layout("scout-q8_0", STEM, 16, 1, 10_485_760, F.MOSTLY_Q8_0, _uniform(Q.Q8_0)),
}


def scout_repo(cache: Path) -> HubRepo:
    """unsloth's Scout with header-only real layouts (served whole, never hashed)."""
    files = [
        HubFile(
            f"{quant}/{STEM}-{quant}.gguf",
            path=real_layouts.ensure_header_only(layout, cache),
            sha256="ab" * 32,
        )
        for quant, layout in SCOUT_QUANTS.items()
    ]
    files.append(HubFile("mmproj-F16.gguf", gguf_bytes(64, 99), listed_size=1_750_000_000))
    repo = HubRepo(SCOUT, {f.name: f for f in files}, downloads=48_213)
    repo.license, repo.license_name = "other", "llama4"
    return repo


def _wait(app: QApplication, done: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(5):
        app.processEvents()


def _planned(dialog: ModelManagerDialog) -> bool:
    table = dialog.quant_table
    texts = [table.item(r, 4).text() for r in range(table.rowCount())]
    return bool(texts) and "checking…" not in texts


def _select(app: QApplication, dialog: ModelManagerDialog, repo_id: str) -> None:
    dialog.show_repo(repo_id)
    failed = dialog.catalog.notice.text
    _wait(
        app, lambda: _planned(dialog) or (not dialog.quant_table.rowCount() and "<b>" in failed())
    )


def _search(app: QApplication, dialog: ModelManagerDialog, _repo: str) -> None:
    dialog.search_edit.setText("llama-4")
    dialog._on_search_requested()
    _wait(app, lambda: dialog.repo_list.count() > 0)


SCENES: dict[str, tuple[str, str, Callable[[QApplication, ModelManagerDialog, str], None]]] = {
    "scout": ("rtx4090-64gb", SCOUT, _select),
    "scout-mac": ("m4-max-64gb", SCOUT, _select),
    "maverick-small": ("rtx4090-64gb", MAVERICK, _select),
    "failed": ("rtx4090-64gb", "bartowski/meta-llama_Llama-4-Scout-17B-16E-Instruct-GGUF", _select),
    "search": ("rtx4090-64gb", "", _search),
}


def shoot(
    app: QApplication, hub: FakeHub, home: Path, out: Path, scene: str, palette: QPalette
) -> list[Path]:
    """Render ``scene`` at each size with ``palette``; save the PNGs."""
    app.setPalette(palette)
    machine, repo_id, act = SCENES[scene]
    paths = AppPaths.under(home / scene).ensure()
    service = HubService(paths, endpoint=hub.endpoint, token=False)
    dialog = ModelManagerDialog(paths, None, service=service, hardware=profile(machine))
    dialog.show()
    act(app, dialog, repo_id)
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    saved = []
    for width, height in SIZES:
        dialog.resize(width, height)
        _wait(app, lambda: False, 0.2)
        path = out / f"models-{scene}-{width}{'-dark' if dark else ''}.png"
        dialog.grab().save(str(path))
        saved.append(path)
    dialog.close()
    dialog.deleteLater()
    app.processEvents()
    return saved


def main(argv: list[str] | None = None) -> int:
    """Save the screenshots; return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "screenshots")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENES), help="these scenes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get("HERD_TEST_CACHE") or Path.home() / ".cache" / "herd-tests")
    cache.mkdir(parents=True, exist_ok=True)
    if not real_layouts.sparse_files_work(cache):
        log.error("%s does not keep sparse files; the header-only models need them", cache)
        return 1
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    app.setStyle(QStyleFactory.create("Fusion"))
    with FakeHub() as hub, tempfile.TemporaryDirectory() as tmp:
        hub.add(scout_repo(cache))
        hub.add(showcase_repo(MAVERICK, sizes=MAVERICK_SIZES))
        for scene in args.only or SCENES:
            for palette in (light_palette(), dark_palette()):
                for path in shoot(app, hub, Path(tmp), args.out, scene, palette):
                    log.info("saved %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
