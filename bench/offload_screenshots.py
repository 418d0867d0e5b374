"""Screenshots of the Offload & Context panel, offscreen, in a light and a dark palette.

    .venv/bin/python bench/offload_screenshots.py [OUT_DIR]

Plans Llama 4 Scout Q4_K_M (its real tensor layout, no weights needed) at 128K tokens of
context on the ``rtx4090-64gb`` and ``m3-ultra-192gb`` profiles and saves
``offload-<profile>.png`` and ``offload-<profile>-dark.png`` into OUT_DIR (default:
``screenshots/`` at the repo root).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtGui import QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication, QStyleFactory  # noqa: E402

from app.core.hardware.spec import profile  # noqa: E402
from app.core.plan.planner import Wishes  # noqa: E402
from app.ui.offload.offload_panel import OffloadPanel  # noqa: E402
from app.ui.theme import dark_palette  # noqa: E402
from tests.fixtures.real_layouts import scout_q4_k_m  # noqa: E402

log = logging.getLogger("offload_screenshots")
PROFILES = ("rtx4090-64gb", "m3-ultra-192gb")
CTX = 131_072
SIZE = (900, 840)


def shoot(app: QApplication, out: Path, name: str, palette: QPalette) -> Path:
    """Render the panel for profile ``name`` with ``palette`` and save it as a PNG."""
    app.setPalette(palette)
    panel = OffloadPanel(scout_q4_k_m(), profile(name), Wishes(n_ctx=CTX))
    panel.setWindowTitle(f"Offload & Context — {name}")
    panel.resize(*SIZE)
    panel.show()
    for _ in range(3):
        app.processEvents()
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    path = out / f"offload-{name}{'-dark' if dark else ''}.png"
    panel.grab().save(str(path))
    panel.close()
    panel.deleteLater()
    app.processEvents()
    return path


def main(argv: list[str] | None = None) -> int:
    """Save the four screenshots; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "screenshots")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    app.setStyle(QStyleFactory.create("Fusion"))
    light = app.style().standardPalette()
    for name in PROFILES:
        for palette in (light, dark_palette()):
            log.info("saved %s", shoot(app, args.out, name, palette))
    return 0


if __name__ == "__main__":
    sys.exit(main())
