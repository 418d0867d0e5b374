"""The probe's grid as a heat map (PNG), drawn with Pillow: rows are depths, columns lengths.

Pillow is drawn on directly: a labelled grid of coloured cells needs no plotting library.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from app.core.probe.result import ProbeResult
from app.core.probe.words import percent, plural, tokens_label

CELL = (72, 30)  # width, height of one cell, in pixels
LEFT, TOP, RIGHT, BOTTOM = 70, 60, 20, 48  # margins: depth labels, title, length labels
_BACKGROUND = (255, 255, 255)
_INK = (33, 37, 41)
_NOT_RUN = (222, 226, 230)
_STOPS = ((0.0, (214, 69, 65)), (0.5, (240, 196, 64)), (1.0, (76, 166, 92)))  # red..green

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def heatmap_size(n_depths: int, n_lengths: int) -> tuple[int, int]:
    """The image's size in pixels for a grid of ``n_depths`` rows and ``n_lengths`` columns."""
    width = LEFT + CELL[0] * max(n_lengths, 1) + RIGHT
    return max(width, 360), TOP + CELL[1] * max(n_depths, 1) + BOTTOM


def colour(share: float | None) -> tuple[int, int, int]:
    """A cell's colour: red for no recall, through yellow, to green for all of it."""
    if share is None:
        return _NOT_RUN
    share = min(max(share, 0.0), 1.0)
    for (a, ca), (b, cb) in zip(_STOPS, _STOPS[1:], strict=False):
        if share <= b:
            t = (share - a) / (b - a)
            r, g, bl = (round(x + (y - x) * t) for x, y in zip(ca, cb, strict=True))
            return r, g, bl
    return _STOPS[-1][1]


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # a Pillow without FreeType: the small bitmap
        return ImageFont.load_default()


def _text(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: Font, align: str
) -> None:
    """Draw ``text`` placed by ``align``: "rm" right-middle, "mm" centred, "ma" centre-top.

    Placed by its measured box rather than Pillow's anchors, which bitmap fonts refuse.
    """
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left, bottom - top
    x, y = xy
    x -= {"r": w, "m": w / 2}.get(align[0], 0)
    y -= {"m": h / 2}.get(align[1], 0)
    draw.text((x - left, y - top), text, fill=_INK, font=font)


def draw_heatmap(result: ProbeResult) -> Image.Image:
    """The heat map of ``result``'s grid, with its title and axis labels."""
    rows, cols = len(result.depths), len(result.lengths)
    image = Image.new("RGB", heatmap_size(rows, cols), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    title_font, font, small = _font(15), _font(13), _font(12)
    kv = f", {result.kv_type} KV" if result.kv_type else ""
    title = f"Recall: {result.model}"
    draw.text((8, 6), title, fill=_INK, font=title_font)
    sub = f"{result.n_ctx:,} tokens of context{kv}, {plural(result.trials, 'trial')} per cell"
    draw.text((8, 26), sub, fill=_INK, font=small)
    grid = result.grid()
    cw, ch = CELL
    for r, depth in enumerate(result.depths):
        y = TOP + r * ch
        label = f"{depth * 100:.0f}%"
        _text(draw, (LEFT - 8, y + ch / 2), label, font, "rm")
        for c, share in enumerate(grid[r]):
            x = LEFT + c * cw
            draw.rectangle((x, y, x + cw - 2, y + ch - 2), fill=colour(share))
            _text(draw, (x + (cw - 2) / 2, y + (ch - 2) / 2), percent(share), font, "mm")
    bottom = TOP + rows * ch
    for c, length in enumerate(result.lengths):
        centre = LEFT + c * cw + (cw - 2) / 2
        _text(draw, (centre, bottom + 4), tokens_label(length), font, "ma")
    draw.text((LEFT, bottom + 26), "prompt length (tokens)", fill=_INK, font=small)
    draw.text((8, TOP - 17), "depth", fill=_INK, font=small)
    return image


def heatmap_png(result: ProbeResult) -> bytes:
    """The heat map as PNG bytes (for the window)."""
    out = io.BytesIO()
    draw_heatmap(result).save(out, format="PNG")
    return out.getvalue()


def save_heatmap(result: ProbeResult, path: Path) -> None:
    """Write the heat map to ``path`` as a PNG.

    Raises:
        OSError: the file could not be written.
    """
    draw_heatmap(result).save(path, format="PNG")
