"""Llama 4's image layout: Meta's grid choice, the resize, the tiles and the token count.

The grid is checked against an oracle written the way Meta's ``preprocess.py`` computes
it (float32 scales, like its torch tensors, and the first smallest area among ties), and
the counts against the figures of the issue that was measured on transformers' processor.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.core.chat import llama4_images as tiling
from app.core.chat.llama4_format import IMAGE, IMAGE_END, IMAGE_START, PATCH
from app.core.chat.llama4_format import TILE_X_SEPARATOR as X_SEP
from app.core.chat.llama4_format import TILE_Y_SEPARATOR as Y_SEP

# (width, height) -> (official prompt tokens, cols x rows), from transformers' Llama4Processor
OFFICIAL = {
    (200, 150): (147, (1, 1)),
    (672, 336): (437, (2, 1)),
    (1344, 1344): (2467, (4, 4)),
    (2048, 1536): (1887, (4, 3)),
    (3000, 400): (2467, (8, 2)),
}

SIZES = [
    (1, 1), (5, 3), (28, 28), (200, 150), (335, 335), (336, 336), (337, 336), (336, 337),
    (400, 300), (640, 480), (672, 336), (336, 672), (800, 600), (1000, 1000), (1024, 768),
    (1280, 720), (1344, 1344), (1345, 1344), (1920, 1080), (1080, 1920), (2048, 1536),
    (3000, 400), (400, 3000), (4000, 3000), (5000, 50), (50, 5000), (5376, 336), (336, 5376),
    (6000, 6000), (7000, 100), (100, 7000), (12000, 4000), (333, 1), (1, 333), (999, 1001),
]  # fmt: skip


def meta_grid(width: int, height: int, tile: int = 336, max_tiles: int = 16) -> tuple[int, int]:
    """Meta's get_best_fit, vectorised in float32 as its torch code runs it."""
    pairs = []
    by_ratio: dict[float, list[tuple[int, int]]] = {}
    for count in range(max_tiles, 0, -1):
        for first in sorted(d for d in range(1, count + 1) if count % d == 0):
            by_ratio.setdefault(first / (count // first), []).append((first, count // first))
    for group in by_ratio.values():
        pairs.extend(group)
    canvas = np.array(pairs, dtype=np.int64) * tile
    scale_w = canvas[:, 0].astype(np.float32) / np.float32(width)
    scale_h = canvas[:, 1].astype(np.float32) / np.float32(height)
    scales = np.where(scale_w > scale_h, scale_h, scale_w)
    up = scales[scales >= 1]
    chosen = up.min() if len(up) else scales[scales < 1].max()
    candidates = canvas[scales == chosen]
    best = candidates[np.argmin(candidates[:, 0] * candidates[:, 1])]
    return int(best[0]) // tile, int(best[1]) // tile


def expected_tokens(cols: int, rows: int, per_tile: int = 144) -> int:
    if cols * rows == 1:
        return 3 + per_tile  # <|image_start|><|image|>{tile}<|image_end|>
    separators = rows * (cols - 1) + rows
    return 3 + per_tile * (cols * rows + 1) + separators


@pytest.mark.parametrize(("size", "official"), list(OFFICIAL.items()))
def test_the_issue_table(size: tuple[int, int], official: tuple[int, tuple[int, int]]) -> None:
    count, grid = official
    found = tiling.best_grid(*size)
    assert (found.cols, found.rows) == grid
    assert tiling.image_tokens(*size) == count


@pytest.mark.parametrize("size", SIZES)
def test_grid_and_count_agree_with_meta(size: tuple[int, int]) -> None:
    grid = tiling.best_grid(*size)
    assert (grid.cols, grid.rows) == meta_grid(*size)
    assert 1 <= grid.tiles <= tiling.MAX_TILES
    # the resized image fits its canvas, keeps its aspect ratio, grows at most to a tile
    assert grid.width <= grid.cols * 336 and grid.height <= grid.rows * 336
    width, height = size
    # one side is exact, the other rounded down: off by less than a pixel's worth
    assert abs(grid.width * height - grid.height * width) <= max(width, height)
    if width >= 336 and height >= 336 and grid.width > width:
        pytest.fail("an image larger than a tile was upscaled")
    assert tiling.image_tokens(*size) == expected_tokens(grid.cols, grid.rows)


def test_exactly_one_tile_and_one_more_pixel() -> None:
    assert tiling.image_tokens(336, 336) == 147
    assert tiling.best_grid(337, 336).tiles == 2  # a pixel more and it needs two tiles
    assert tiling.image_tokens(337, 336) == 437


def test_more_than_sixteen_tiles_worth_is_downscaled_to_sixteen_at_most() -> None:
    grid = tiling.best_grid(6000, 6000)
    assert (grid.cols, grid.rows) == (4, 4)
    assert (grid.width, grid.height) == (1344, 1344)
    assert tiling.best_grid(100_000, 10).tiles <= 16


def _as_text(pieces: list[str], per_tile: int) -> str:
    return "".join(PATCH * per_tile if p == tiling.TILE else p for p in pieces)


def test_layout_matches_metas_prompt_format_examples() -> None:
    """models/llama4/prompt_format.md: a small image, and a 2 x 2 image (patches elided)."""
    small = _as_text(tiling.layout(tiling.best_grid(200, 150)), 2).replace(PATCH * 2, "P")
    assert small == f"{IMAGE_START}{IMAGE}P{IMAGE_END}"
    two_by_two = _as_text(tiling.layout(tiling.best_grid(672, 672)), 2).replace(PATCH * 2, "P")
    assert two_by_two == (f"{IMAGE_START}P{X_SEP}P{Y_SEP}P{X_SEP}P{Y_SEP}{IMAGE}P{IMAGE_END}")


def test_wide_grid_rows_and_separators() -> None:
    pieces = tiling.layout(tiling.best_grid(3000, 400))  # 8 x 2
    assert pieces.count(X_SEP) == 2 * 7 and pieces.count(Y_SEP) == 2
    assert pieces.count(tiling.TILE) == 17  # 16 tiles and the global view
    assert pieces[-3:] == [IMAGE, tiling.TILE, IMAGE_END]


def test_tiles_are_cut_row_by_row_and_padded_black() -> None:
    # left half red, right half blue, 700 x 300: a 3 x 1 canvas would need 1008 px
    image = Image.new("RGB", (700, 300), (255, 0, 0))
    image.paste((0, 0, 255), (350, 0, 700, 300))
    grid, tiles = tiling.tile_images(image)
    assert (grid.cols, grid.rows) == (3, 1)
    assert (grid.width, grid.height) == (700, 300)  # fits: not grown, not shrunk
    assert len(tiles) == 4 and all(t.size == (336, 336) for t in tiles)
    assert tiles[0].getpixel((10, 10)) == (255, 0, 0)
    assert tiles[1].getpixel((320, 10)) == (0, 0, 255)
    assert tiles[0].getpixel((10, 320)) == (0, 0, 0)  # below the image: padding
    assert tiles[2].getpixel((300, 10)) == (0, 0, 0)  # right of the image: padding
    # the global view is the whole image squeezed: red on its left, blue on its right
    assert tiles[3].getpixel((10, 168)) == (255, 0, 0)
    assert tiles[3].getpixel((325, 168)) == (0, 0, 255)


def test_one_tile_has_no_global_view() -> None:
    grid, tiles = tiling.tile_images(Image.new("RGB", (200, 150), (9, 9, 9)))
    assert grid.encoded == 1 and len(tiles) == 1
    assert tiles[0].getpixel((335, 200)) == (9, 9, 9)  # grown to the tile's width
    assert tiles[0].getpixel((10, 300)) == (0, 0, 0)  # 252 px high, then padding


def test_other_tile_sizes_follow_the_same_rules() -> None:
    # the tiny test projector's 28 px tiles: a 64 x 48 image fits 3 x 2 tiles as it is
    assert meta_grid(64, 48, tile=28) == (3, 2)
    assert tiling.best_grid(64, 48, tile=28) == tiling.ImageGrid(3, 2, 64, 48)
    assert tiling.image_tokens(64, 48, tile=28, tile_tokens=1) == expected_tokens(3, 2, 1)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be tiled"):
        tiling.best_grid(0, 10)
