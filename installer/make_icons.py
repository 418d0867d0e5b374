"""Render assets/herd.svg into the icon files the desktop bundles need.

    python installer/make_icons.py   # assets/icons/herd-<N>.png, herd.ico, herd.icns

PNGs at 16 ... 1024 px come from Qt's SVG renderer (PySide6's QtSvg, already a dependency);
Pillow (also one) packs them into the Windows .ico and the macOS .icns. The outputs are
committed; the bundle builds run this again so that they always match the SVG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "assets" / "herd.svg"
OUT = ROOT / "assets" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)


def render_pngs(svg: Path, out: Path) -> dict[int, Path]:
    """Each size of ``SIZES`` as ``herd-<N>.png`` in ``out``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {svg} is not a valid SVG")
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = out / f"herd-{size}.png"
        if not image.save(str(path), "PNG"):
            raise SystemExit(f"make_icons: could not write {path}")
        written[size] = path
    del app
    return written


def pack(pngs: dict[int, Path], out: Path) -> None:
    """``herd.ico`` (Windows) and ``herd.icns`` (macOS) from the PNGs."""
    from PIL import Image

    largest = Image.open(pngs[max(pngs)]).convert("RGBA")
    ico = [Image.open(pngs[s]).convert("RGBA") for s in ICO_SIZES]
    ico[-1].save(
        out / "herd.ico", format="ICO", sizes=[(s, s) for s in ICO_SIZES], append_images=ico
    )
    icns = [Image.open(pngs[s]).convert("RGBA") for s in ICNS_SIZES]
    largest.save(out / "herd.icns", format="ICNS", append_images=icns)


def main() -> int:
    """Write every icon; prints what it wrote."""
    pngs = render_pngs(SVG, OUT)
    pack(pngs, OUT)
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
