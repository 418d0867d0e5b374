"""The probe's heat map: a valid PNG of the expected size, coloured by recall."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from app.core.probe.heatmap import CELL, LEFT, TOP, colour, heatmap_size, save_heatmap
from app.core.probe.result import Cell, ProbeResult


def _result(complete: bool = True) -> ProbeResult:
    depths = (0.0, 0.5, 1.0)
    lengths = (1024, 2048, 4096)
    cells = [
        Cell(n, d, 0, "k", "1234567", "", correct=(n != 2048), n_tokens=n, needle_at=d, seconds=1)
        for n in lengths
        for d in depths
        if complete or n != 4096
    ]
    return ProbeResult(
        "Tiny", "/m.gguf", 4096, "f16", "all on the CPU", lengths, depths, 1,
        tuple(cells), 3.0, complete,
    )  # fmt: skip


def _pixel_of(image: Image.Image, row: int, col: int) -> tuple[int, int, int]:
    x = LEFT + col * CELL[0] + 4  # a corner of the cell, away from its text
    y = TOP + row * CELL[1] + 3
    return image.getpixel((x, y))


def test_heatmap_is_a_png_of_the_expected_size(tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    save_heatmap(_result(), out)
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == heatmap_size(3, 3)
        rgb = image.convert("RGB")
        assert _pixel_of(rgb, 0, 0) == colour(1.0)
        assert _pixel_of(rgb, 1, 1) == colour(0.0)
        assert _pixel_of(rgb, 2, 2) == colour(1.0)


def test_cells_not_run_are_grey(tmp_path: Path) -> None:
    out = tmp_path / "partial.png"
    save_heatmap(_result(complete=False), out)
    with Image.open(out) as image:
        rgb = image.convert("RGB")
        assert _pixel_of(rgb, 0, 2) == colour(None)
        assert _pixel_of(rgb, 0, 0) == colour(1.0)


def test_colours_run_from_red_to_green() -> None:
    red, yellow, green = colour(0.0), colour(0.5), colour(1.0)
    assert red[0] > red[1] and green[1] > green[0]
    assert yellow[0] > 200 and yellow[1] > 150
    assert colour(None) not in (red, yellow, green)
