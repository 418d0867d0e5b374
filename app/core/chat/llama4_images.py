"""Llama 4's image layout: Meta's tiling and the token sequence around the tiles.

An image is fitted, without distortion, onto a canvas of whole square tiles (336 px in
Llama 4, at most 16 tiles), as Meta's reference does (llama-models ``models/llama4/
preprocess.py``) and transformers' ``Llama4ImageProcessor`` after it:

* The canvas: of all ``cols x rows`` grids with at most 16 tiles, the one that needs the
  smallest upscaling of the image, or when every grid needs a downscaling, the smallest
  downscaling; among equals, the smallest area (least padding). Scales are compared
  exactly (as fractions), which is what Meta's float comparison means.
* The image is resized to fit that canvas keeping its aspect ratio, bilinear, growing a
  side only up to one tile (a 200 x 150 image becomes 336 x 252 on one 336 px tile, a
  100 x 1000 one is not grown at all), and padded with black at the right and bottom.
* The tiles are cut row by row. An image of more than one tile also gets a global view:
  the whole image squeezed to one tile.

The prompt then holds, in Meta's ``chat_format.py`` and in transformers'
``Llama4Processor._prompt_split_image`` alike::

    one tile:  <|image_start|><|image|>{tile}<|image_end|>
    a grid:    <|image_start|>{tile}<|tile_x_separator|>{tile}<|tile_y_separator|>
               ...one row after another, each row ended by <|tile_y_separator|>...
               <|image|>{global view}<|image_end|>

where each ``{tile}`` is the projector's embeddings of one tile (144 in Llama 4: 336 / 14 =
24 x 24 patches, pixel-shuffled by 2). This module has no llama.cpp: the engine fills the
tiles (:mod:`app.core.engine.multimodal`), and the token meter counts with
:func:`image_tokens` without asking it.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

from PIL import Image

from app.core.chat.llama4_format import (
    IMAGE,
    IMAGE_END,
    IMAGE_START,
    TILE_X_SEPARATOR,
    TILE_Y_SEPARATOR,
)

__all__ = [
    "MAX_TILES",
    "SPECIALS",
    "TILE_SIZE",
    "TILE_TOKENS",
    "ImageGrid",
    "best_grid",
    "canvases",
    "image_tokens",
    "layout",
    "tile_images",
]

TILE_SIZE = 336
"""Side of one tile in pixels (Llama 4's vision encoder input)."""
MAX_TILES = 16
"""Most tiles an image is cut into, its global view not counted."""
TILE_TOKENS = 144
"""Embeddings per tile in Llama 4: (336 / 14) ** 2 patches, a quarter after the shuffle."""

SPECIALS = (IMAGE_START, IMAGE, TILE_X_SEPARATOR, TILE_Y_SEPARATOR, IMAGE_END)
"""The special tokens an image's layout is made of (besides its tiles)."""

TILE = "tile"
"""A layout piece that stands for one tile's embeddings (the global view's included)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ImageGrid:
    """Where an image goes: ``cols x rows`` tiles, the image resized to ``width x height``."""

    cols: int
    rows: int
    width: int  # the resized image, before padding to cols * tile x rows * tile
    height: int

    @property
    def tiles(self) -> int:
        """Tiles the canvas is cut into (the global view not counted)."""
        return self.cols * self.rows

    @property
    def encoded(self) -> int:
        """Images the projector encodes: the tiles, plus the global view when several."""
        return self.tiles + (1 if self.tiles > 1 else 0)


def canvases(max_tiles: int = MAX_TILES) -> list[tuple[int, int]]:
    """Every grid ``(cols, rows)`` of at most ``max_tiles`` tiles, in Meta's order.

    The order only matters between grids of equal scale and equal area, which a tighter
    grid always beats; it is kept anyway so that every tie resolves as Meta's does.
    """
    by_ratio: dict[float, list[tuple[int, int]]] = {}
    for count in range(max_tiles, 0, -1):
        for first in sorted(_factors(count)):
            second = count // first
            by_ratio.setdefault(first / second, []).append((first, second))
    return [pair for pairs in by_ratio.values() for pair in pairs]


def _factors(n: int) -> set[int]:
    found: set[int] = set()
    for i in range(1, int(n**0.5) + 1):
        if n % i == 0:
            found.update((i, n // i))
    return found


def best_grid(
    width: int, height: int, *, tile: int = TILE_SIZE, max_tiles: int = MAX_TILES
) -> ImageGrid:
    """The grid an upright ``width x height`` image is fitted to, and its resized size.

    Raises:
        ValueError: a side is not positive.
    """
    if width <= 0 or height <= 0 or tile <= 0 or max_tiles <= 0:
        raise ValueError(f"an image of {width} x {height} px cannot be tiled")
    options = canvases(max_tiles)
    scales = [min(Fraction(c * tile, width), Fraction(r * tile, height)) for c, r in options]
    growing = [s for s in scales if s >= 1]
    chosen = min(growing) if growing else max(scales)
    best = min(
        (pair for pair, scale in zip(options, scales, strict=True) if scale == chosen),
        key=lambda pair: pair[0] * pair[1],
    )
    cols, rows = best
    resized_w, resized_h = _resized(width, height, cols * tile, rows * tile, tile)
    return ImageGrid(cols, rows, resized_w, resized_h)


def _resized(width: int, height: int, canvas_w: int, canvas_h: int, tile: int) -> tuple[int, int]:
    """The size the image is resized to: the canvas, but growing it only up to ``tile``."""
    target_w = min(max(width, tile), canvas_w)
    target_h = min(max(height, tile), canvas_h)
    # in floats, rounded down, as Meta's get_max_res_without_distortion computes it
    scale_w = target_w / width
    scale_h = target_h / height
    if scale_w < scale_h:
        new_w, new_h = target_w, min(math.floor(height * scale_w), target_h)
    else:
        new_w, new_h = min(math.floor(width * scale_h), target_w), target_h
    return max(new_w, 1), max(new_h, 1)


def layout(grid: ImageGrid) -> list[str]:
    """The image's place in the prompt: special tokens, and :data:`TILE` per tile's embeddings.

    The tiles come in the order :func:`tile_images` returns them.
    """
    pieces = [IMAGE_START]
    if grid.tiles > 1:
        for _row in range(grid.rows):
            for col in range(grid.cols):
                pieces.append(TILE)
                if col < grid.cols - 1:
                    pieces.append(TILE_X_SEPARATOR)
            pieces.append(TILE_Y_SEPARATOR)
    pieces += [IMAGE, TILE, IMAGE_END]
    return pieces


def image_tokens(
    width: int,
    height: int,
    *,
    tile: int = TILE_SIZE,
    tile_tokens: int = TILE_TOKENS,
    max_tiles: int = MAX_TILES,
) -> int:
    """Prompt positions an upright ``width x height`` image fills, its markers included.

    Raises:
        ValueError: a side is not positive.
    """
    pieces = layout(best_grid(width, height, tile=tile, max_tiles=max_tiles))
    return sum(tile_tokens if piece == TILE else 1 for piece in pieces)


def tile_images(
    image: Image.Image, *, tile: int = TILE_SIZE, max_tiles: int = MAX_TILES
) -> tuple[ImageGrid, list[Image.Image]]:
    """Cut an upright RGB image as Meta's reference does (see the module's notes).

    Returns:
        The grid, and ``tile x tile`` RGB images: the tiles row by row, then the global
        view when there is more than one tile.
    """
    grid = best_grid(image.width, image.height, tile=tile, max_tiles=max_tiles)
    resized = image.resize((grid.width, grid.height), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (grid.cols * tile, grid.rows * tile), (0, 0, 0))
    canvas.paste(resized, (0, 0))
    tiles = [
        canvas.crop((col * tile, row * tile, (col + 1) * tile, (row + 1) * tile))
        for row in range(grid.rows)
        for col in range(grid.cols)
    ]
    if grid.tiles > 1:
        tiles.append(image.resize((tile, tile), Image.Resampling.BILINEAR))
    return grid, tiles
