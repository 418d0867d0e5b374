"""Screenshots of the Offload & Context dialog, offscreen, in a light and a dark palette.

    .venv/bin/python bench/offload_screenshots.py [OUT_DIR] [--only NAME ...]

Plans real tensor layouts (no weights needed) on the hardware profiles a user meets: Scout
Q4_K_M on an RTX 4090 + 64 GB at 128K tokens (automatic, and with 20 expert layers pinned)
and at its whole 10M context (which does not fit), on a PC without a GPU and on an M3 Ultra
(unified memory); Maverick Q4_K_S on the RTX 4090 (it does not fit). Each is shot at
860 x 900 (a 1600 x 1000 screen) and 860 x 725 (what a 1280 x 800 screen leaves a dialog),
light and dark, and saved as ``offload-<scenario>-<height>[-dark].png`` into OUT_DIR
(default: ``screenshots/`` at the repo root).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtGui import QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication, QStyleFactory  # noqa: E402

from app.core.gguf.info import GGUFInfo  # noqa: E402
from app.core.hardware.spec import profile  # noqa: E402
from app.core.plan.planner import Wishes  # noqa: E402
from app.ui.offload.offload_panel import OffloadDialog  # noqa: E402
from app.ui.theme import dark_palette, light_palette  # noqa: E402
from tests.fixtures.real_layouts import maverick_q4, scout_q4_k_m  # noqa: E402

log = logging.getLogger("offload_screenshots")
CTX = 131_072
WIDTH = 860
HEIGHTS = (900, 725)

# name: (model layout, hardware profile, the model's wishes)
SCENARIOS: dict[str, tuple[Callable[[], GGUFInfo], str, Wishes]] = {
    "rtx4090": (scout_q4_k_m, "rtx4090-64gb", Wishes(n_ctx=CTX)),
    "rtx4090-pinned": (scout_q4_k_m, "rtx4090-64gb", Wishes(n_ctx=CTX, gpu_expert_layers=20)),
    "rtx4090-10m": (scout_q4_k_m, "rtx4090-64gb", Wishes(n_ctx=10_485_760)),
    "cpu": (scout_q4_k_m, "cpu-64gb", Wishes(n_ctx=CTX)),
    "m3-ultra": (scout_q4_k_m, "m3-ultra-192gb", Wishes(n_ctx=CTX)),
    "maverick-rtx4090": (maverick_q4, "rtx4090-64gb", Wishes()),
}


def shoot(app: QApplication, out: Path, scenario: str, height: int, palette: QPalette) -> Path:
    """Render the dialog for ``scenario`` at ``height`` px with ``palette``; save a PNG."""
    app.setPalette(palette)
    layout, name, wishes = SCENARIOS[scenario]
    dialog = OffloadDialog(layout(), profile(name), wishes)
    dialog.resize(WIDTH, height)
    dialog.show()
    for _ in range(3):
        app.processEvents()
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    path = out / f"offload-{scenario}-{height}{'-dark' if dark else ''}.png"
    dialog.grab().save(str(path))
    dialog.close()
    dialog.deleteLater()
    app.processEvents()
    return path


def main(argv: list[str] | None = None) -> int:
    """Save the screenshots; return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "screenshots")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="these scenarios")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    app.setStyle(QStyleFactory.create("Fusion"))
    for scenario in args.only or SCENARIOS:
        for height in HEIGHTS:
            for palette in (light_palette(), dark_palette()):
                log.info("saved %s", shoot(app, args.out, scenario, height, palette))
    return 0


if __name__ == "__main__":
    sys.exit(main())
