"""Llama 4's official image layout in the engine: Meta's tiles, each encoded by mtmd.

mtmd in llama-cpp-python 0.3.36 lays a Llama 4 image out its own way: llava-uhd slices of
at most 3 x 3, no tile separators and no ``<|image|>`` (llama.cpp issues 24079 and 21871).
So Herd cuts the image itself (:mod:`app.core.chat.llama4_images`), hands mtmd each
336 px tile and the global view as a bitmap of their own (mtmd encodes a tile-sized
bitmap as exactly one chunk of embeddings: checked for every tile, every time), and puts
the special tokens between them as text: the sequence Meta's ``chat_format.py`` and
transformers' ``Llama4Processor`` build.

It is used when the projector is a Llama 4 one and the model knows Llama 4's image
tokens; any other projector keeps mtmd's own layout.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core import vision
from app.core.chat import llama4_images as tiling
from app.core.engine.media_chunks import MediaChunk
from app.core.errors import HerdError, ModelFileError
from app.core.gguf.reader import read_part

__all__ = [
    "OfficialLayout",
    "TileGeometry",
    "describe_layout",
    "load_layout",
    "open_projector",
    "official_chunks",
    "read_geometry",
    "tile_file",
]

logger = logging.getLogger(__name__)

SPECIALS = tiling.SPECIALS


@dataclass(frozen=True, slots=True)
class TileGeometry:
    """A Llama 4 projector's tiles: their side in pixels and the embeddings each gives."""

    tile: int
    tile_tokens: int
    max_tiles: int = tiling.MAX_TILES

    def image_tokens(self, width: int, height: int) -> int:
        """Prompt positions an upright ``width x height`` image fills, markers included."""
        return tiling.image_tokens(
            width, height, tile=self.tile, tile_tokens=self.tile_tokens, max_tiles=self.max_tiles
        )


@dataclass(frozen=True, slots=True)
class OfficialLayout:
    """What the engine needs to lay images out officially: the geometry and token ids."""

    geometry: TileGeometry
    ids: Mapping[str, int]  # each of SPECIALS -> its one token id


@dataclass(frozen=True, slots=True)
class TiledImage:
    """An image cut for the projector: its grid, and each tile as mtmd's input."""

    grid: tiling.ImageGrid
    tiles: tuple[tuple[str, int, int, bytes], ...]  # (id, width, height, RGB) per tile


def read_geometry(projector_path: str | os.PathLike[str]) -> TileGeometry | None:
    """The tile geometry of a Llama 4 projector GGUF (None: another kind of projector).

    Raises:
        ModelFileError: the file's header cannot be read.
    """
    meta = read_part(Path(projector_path), 0).metadata
    kind = meta.get("clip.projector_type", meta.get("clip.vision.projector_type"))
    if kind != "llama4":
        return None
    size = int(meta.get("clip.vision.image_size", 0))
    patch = int(meta.get("clip.vision.patch_size", 0))
    shuffle = int(meta.get("clip.vision.projector.scale_factor", 2) or 2)
    if size <= 0 or patch <= 0 or size % patch or (size // patch) % shuffle:
        raise ModelFileError(
            f"The vision projector {Path(projector_path).name} has tiles of {size} px and "
            f"patches of {patch} px, which do not divide evenly.",
            "Download the model's mmproj file again.",
        )
    return TileGeometry(size, (size // patch // shuffle) ** 2)


def special_ids(tokenize: Any) -> dict[str, int] | None:
    """Each of Llama 4's image tokens as its one id (None: the vocabulary lacks one).

    ``tokenize(bytes) -> list[int]`` parses special tokens and adds no BOS.
    """
    ids = {}
    for text in SPECIALS:
        found = tokenize(text.encode("utf-8"))
        if len(found) != 1:
            return None
        ids[text] = found[0]
    return ids


def tile_file(path: str, geometry: TileGeometry) -> TiledImage:
    """Read an image and cut it into the projector's tiles (Meta's rules).

    Raises:
        ImageError: the image is missing, damaged, too large or not an image.
    """
    image = vision.load_rgb(path, max_side=0)  # the grid depends on the full size
    digest = vision.file_digest(path)
    grid, tiles = tiling.tile_images(image, tile=geometry.tile, max_tiles=geometry.max_tiles)
    return TiledImage(
        grid,
        tuple((f"{digest}#{i}", t.width, t.height, t.tobytes()) for i, t in enumerate(tiles)),
    )


def official_chunks(
    projector: Any,
    layout: OfficialLayout,
    image: TiledImage,
    marker: str,
    stack: contextlib.ExitStack[Any],
) -> list[MediaChunk]:
    """The image's chunks in the official sequence: special tokens and tiles' embeddings.

    Raises:
        HerdError: mtmd did not give each tile exactly one chunk of the expected size.
        ValueError: mtmd could not prepare a tile.
    """
    chunks = stack.enter_context(projector.tokenize(marker * len(image.tiles), image.tiles))
    embedded = [chunk for chunk in chunks if chunk.handle is not None]
    expected = layout.geometry.tile_tokens
    sizes = [len(chunk.tokens) for chunk in embedded]
    if len(embedded) != len(image.tiles) or any(n != expected for n in sizes):
        raise HerdError(
            f"The vision projector gave {sizes} embeddings for {len(image.tiles)} tile(s) "
            f"of {layout.geometry.tile} px; Llama 4's layout needs {expected} per tile.",
            "This llama.cpp encodes Llama 4 tiles differently; report it with the engine log.",
        )
    pending = iter(embedded)
    result = []
    for piece in tiling.layout(image.grid):
        result.append(next(pending) if piece == tiling.TILE else MediaChunk((layout.ids[piece],)))
    return result


def tile_tokens_seen(projector: Any, geometry: TileGeometry, marker: str) -> int:
    """Embeddings mtmd gives one blank tile (what :func:`official_chunks` will expect)."""
    blank = ("herd-probe-tile", geometry.tile, geometry.tile, bytes(geometry.tile**2 * 3))
    with projector.tokenize(marker, [blank]) as chunks:
        sizes = [len(chunk.tokens) for chunk in chunks if chunk.handle is not None]
    return sizes[0] if len(sizes) == 1 else -1


def open_projector(path: str, llm: Any, *, use_gpu: bool, flash_attn: bool) -> Any:
    """Load a projector for ``llm`` and choose its image layout (see :func:`load_layout`).

    Raises:
        RuntimeError: mtmd refused the file.
        ModelFileError: a Llama 4 projector's header is unreadable or its geometry wrong.
    """
    from app.core.engine import llama_ext, llama_vision

    projector = llama_vision.Projector.load(path, llm, use_gpu=use_gpu, flash_attn=flash_attn)
    try:
        projector.official = load_layout(
            projector,
            path,
            lambda text: llama_ext.tokenize(llm, text, special=True),
            llama_vision.media_marker(),
        )
    except HerdError:
        projector.close()
        raise
    logger.info("%s", describe_layout(projector.official))
    return projector


def load_layout(projector: Any, path: str, tokenize: Any, marker: str) -> OfficialLayout | None:
    """The official layout for a loaded projector, or None where it cannot be used.

    None for a projector that is not Llama 4's, a model whose vocabulary lacks Llama 4's
    image tokens, or an mtmd that does not encode one tile as one chunk of the tile's
    embeddings (each is logged).

    Raises:
        ModelFileError: the projector's header cannot be read, or its geometry is wrong.
    """
    geometry = read_geometry(path)
    if geometry is None:
        return None
    ids = special_ids(tokenize)
    if ids is None:
        logger.warning("the model lacks Llama 4's image tokens: mtmd's layout is used")
        return None
    seen = tile_tokens_seen(projector, geometry, marker)
    if seen != geometry.tile_tokens:
        logger.warning(
            "mtmd gives a %d px tile %d embeddings, not %d: mtmd's layout is used",
            geometry.tile, seen, geometry.tile_tokens,
        )  # fmt: skip
        return None
    return OfficialLayout(geometry, ids)


def describe_layout(layout: OfficialLayout | None) -> str:
    """A log line saying which image layout the engine uses."""
    if layout is None:
        return "images use mtmd's own layout (not a Llama 4 projector)"
    g = layout.geometry
    return f"images use Llama 4's official layout: tiles of {g.tile} px, {g.tile_tokens} each"
