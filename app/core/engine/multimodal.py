"""Prompts with images, in the engine process: pixels in, the model's context filled.

Herd renders the prompt itself (one image placeholder per image, in Llama 4's format). A
chat prompt comes as segments (:mod:`app.core.engine.prompt_tokens`): its text is tokenized
here, message contents as plain text, and each placeholder *token* of the format (never
``<|image|>`` typed into a message) is swapped for the image's chunks, which mtmd makes from
its media marker alone. A raw completion prompt goes to mtmd whole instead: each
placeholder becomes mtmd's media marker and mtmd splits the prompt into text and image
chunks. Either way the chunks are evaluated into the context, all but the prompt's last
token.
The sampling loop then goes on exactly as for a text prompt.

Every position an image fills gets a stand-in id (negative, derived from the image's
digest) in llama-cpp-python's token history, so the next turn's prompt, which repeats the
conversation, reuses the cached prefix images included instead of encoding them again.

Only ``llama_ext`` touches llama.cpp; this module imports it lazily (it runs only in the
engine process).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core import vision
from app.core.engine import image_tiles
from app.core.engine.media_chunks import MediaChunk
from app.core.errors import ContextFullError, HerdError

__all__ = [
    "ImageCounter",
    "PreparedImage",
    "count_images",
    "evaluate_prompt",
    "evaluate_segments",
    "image_chunks",
    "official_layout",
    "prefill",
    "prepare_images",
    "reuse_point",
]


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """An image ready for mtmd: upright RGB pixels and the file's sha256."""

    digest: str
    width: int
    height: int
    rgb: bytes

    def as_tuple(self) -> tuple[str, int, int, bytes]:
        """The form ``llama_vision.Projector.tokenize`` takes."""
        return self.digest, self.width, self.height, self.rgb


def prepare_images(paths: Sequence[str]) -> list[PreparedImage]:
    """Check, decode and scale each image.

    Raises:
        ImageError: an image is missing, damaged, too large or not an image.
    """
    prepared = []
    for path in paths:
        img = vision.load_rgb(path)
        digest = vision.file_digest(path)
        prepared.append(PreparedImage(digest, img.width, img.height, img.tobytes()))
    return prepared


def placeholders_to_markers(prompt: str, placeholder: str, marker: str, n_images: int) -> str:
    """Swap each image placeholder for mtmd's marker, after checking they pair up.

    Raises:
        HerdError: the prompt has more or fewer placeholders than there are images.
    """
    found = prompt.count(placeholder) if placeholder else 0
    if found != n_images:
        raise HerdError(
            f"The prompt has {found} image placeholder(s) for {n_images} image(s).",
            f"A message's text may not contain {placeholder!r} itself; remove it and retry.",
        )
    return prompt.replace(placeholder, marker)


def reuse_point(cached: Sequence[int], chunks: Sequence[Any]) -> int:
    """How many leading positions of the cache the new prompt can keep.

    Never more than all but the prompt's last token (it is evaluated to get fresh logits),
    and never part of an image: an image is kept whole or evaluated again.
    """
    full = [t for chunk in chunks for t in chunk.tokens]
    limit = min(len(cached), len(full) - 1)
    keep = 0
    while keep < limit and cached[keep] == full[keep]:
        keep += 1
    start = 0
    for chunk in chunks:
        end = start + len(chunk.tokens)
        if chunk.handle is not None and start < keep < end:
            return start
        if end >= keep:
            break
        start = end
    return keep


def prefill(llm: Any, projector: Any, chunks: Sequence[Any], should_stop: Any) -> list[int] | None:
    """Evaluate all but the last token of ``chunks`` into ``llm``'s context.

    Returns:
        The whole prompt as ids (stand-ins for image positions); pass it to
        ``llm.generate``, which finds all but the last token cached and evaluates that one.
        None when Stop was pressed (``should_stop()`` turned true) before the end.

    Raises:
        RuntimeError: evaluation failed (or Stop aborted a decode under way).
        HerdError: the prompt does not end with text, or does not fit the context.
    """
    if not chunks or chunks[-1].handle is not None or not chunks[-1].tokens:
        raise HerdError("A prompt with images must end with text.", "Report this as a bug.")
    full = [t for chunk in chunks for t in chunk.tokens]
    if len(full) >= llm.n_ctx():
        raise ContextFullError(
            f"The conversation is {len(full)} tokens with its images; the context holds "
            f"{llm.n_ctx()}.",
            "Start a new chat, attach fewer or smaller images, or load the model with a "
            "larger context.",
        )
    keep = reuse_point(llm.input_ids[: llm.n_tokens].tolist(), chunks)
    if keep == 0 or not llm._ctx.kv_cache_seq_rm(-1, keep, -1):
        keep = 0
        llm.reset()
        llm._ctx.kv_cache_clear()
    llm.n_tokens = keep
    start = 0
    for index, chunk in enumerate(chunks):
        end = start + len(chunk.tokens)
        last = index == len(chunks) - 1
        if end <= keep:
            start = end
            continue
        if should_stop():
            return None
        if chunk.handle is None:
            stop_at = end - 1 if last else end  # the prompt's last token is generate()'s
            llm.eval(list(full[max(start, keep) : stop_at]))
        else:
            new_end = projector.eval_image(llm, chunk, llm.n_tokens)
            if new_end != end:
                raise RuntimeError(f"an image took {new_end - start} positions, not {end - start}")
            llm.input_ids[start:end] = chunk.tokens
            llm.n_tokens = end
        start = end
    return full


class ImageCounter:
    """Tokens per image, remembered per file version (the token meter asks often)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], int] = {}

    def tokens(self, projector: Any, marker: str, path: str) -> int:
        """Tokens ``path`` adds to a prompt, its begin/end markers included.

        In Llama 4's official layout the count follows from the image's size alone
        (:mod:`app.core.chat.llama4_images`); any other projector's is mtmd's.

        Raises:
            ImageError: the image cannot be read.
            ValueError: mtmd could not prepare it.
        """
        try:
            stat = os.stat(path)
        except OSError:
            vision.check_image(Path(path))  # raises the clear message
            raise
        key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._known:
            layout = official_layout(projector)
            if layout is not None:
                info = vision.check_image(Path(path))
                self._known[key] = layout.geometry.image_tokens(info.width, info.height)
            else:
                (image,) = prepare_images([path])
                with projector.tokenize(marker, [image.as_tuple()]) as chunks:
                    self._known[key] = sum(len(c.tokens) for c in chunks)
        return self._known[key]


def official_layout(projector: Any) -> image_tiles.OfficialLayout | None:
    """The projector's Llama 4 layout, or None when mtmd lays its images out itself."""
    layout = getattr(projector, "official", None)
    return layout if isinstance(layout, image_tiles.OfficialLayout) else None


def count_images(
    llm: Any,
    projector: Any,
    counter: ImageCounter,
    tokens: Sequence[int],
    images: Sequence[str],
    placeholder: str,
) -> int:
    """Tokens the images add to a prompt whose text tokens are ``tokens``.

    Raises:
        HerdError: the placeholders and images do not pair up, or an image is unusable.
    """
    from app.core.engine import llama_vision

    _placeholder_id(llm, placeholder, tokens, len(images))
    marker = llama_vision.media_marker()
    try:
        return sum(counter.tokens(projector, marker, path) for path in images)
    except ValueError as exc:  # mtmd could not prepare an image
        raise HerdError(f"The image could not be prepared: {exc}.") from None


Evaluated = tuple[list[int], int, int]
"""``(ids, image_tokens, positions_found_cached)`` of an evaluated prompt with images."""


def evaluate_prompt(
    llm: Any,
    projector: Any,
    prompt: str,
    images: Sequence[str],
    placeholder: str,
    should_stop: Any,
) -> Evaluated | None:
    """Read the images, tokenize the prompt with them, and evaluate it (see :func:`prefill`).

    Returns:
        ``(ids, image_tokens, positions_found_cached)``: the prompt's ids for
        ``llm.generate``; how many of them the images add (their begin/end markers too,
        as :func:`count_images` counts); how many were already in the cache. None when
        Stop was pressed first.

    Raises:
        HerdError: an image cannot be read or prepared, or the prompt does not fit.
        RuntimeError: evaluation failed.
    """
    from app.core.engine import llama_ext, llama_vision

    bos = llm.token_bos()
    bos_text = llama_ext.token_bytes(llm, bos, special=True).decode() if bos >= 0 else ""
    add_bos = llama_ext.wants_bos(llm) and not (bos_text and prompt.startswith(bos_text))
    if official_layout(projector) is not None:  # the placeholders' ids are the image slots
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
        return _evaluate_ids(llm, projector, ids, images, placeholder, should_stop)
    prepared = prepare_images(images)
    text = placeholders_to_markers(prompt, placeholder, llama_vision.media_marker(), len(images))
    llama_ext.enable_abort_check(llm, True)
    try:
        pixels = [p.as_tuple() for p in prepared]
        with projector.tokenize(text, pixels, add_special=add_bos) as chunks:
            cached = reuse_point(llm.input_ids[: llm.n_tokens].tolist(), chunks)
            ids = prefill(llm, projector, chunks, should_stop)
    except ValueError as exc:  # mtmd could not prepare an image
        raise HerdError(f"The image could not be prepared: {exc}.") from None
    if ids is None:
        return None
    n_text = len(llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True))
    return ids, len(ids) - (n_text - len(images)), cached


def evaluate_segments(
    llm: Any,
    projector: Any,
    segments: Sequence[Sequence[Any]],
    images: Sequence[str],
    placeholder: str,
    should_stop: Any,
) -> Evaluated | None:
    """:func:`evaluate_prompt` for a chat prompt given as segments.

    Only the format's placeholder tokens take images; a message's text is plain text, so
    ``<|image|>`` typed into it is neither an image slot nor an error.

    Raises:
        HerdError: an image cannot be read or prepared, the placeholders and images do not
            pair up, or the prompt does not fit.
        RuntimeError: evaluation failed.
    """
    from app.core.engine import prompt_tokens

    ids = prompt_tokens.prompt_ids(llm, segments)
    return _evaluate_ids(llm, projector, ids, images, placeholder, should_stop)


def _evaluate_ids(
    llm: Any,
    projector: Any,
    ids: Sequence[int],
    images: Sequence[str],
    placeholder: str,
    should_stop: Any,
) -> Evaluated | None:
    from app.core.engine import llama_ext

    llama_ext.enable_abort_check(llm, True)
    try:
        with contextlib.ExitStack() as stack:
            chunks = image_chunks(llm, projector, ids, images, placeholder, stack)
            cached = reuse_point(llm.input_ids[: llm.n_tokens].tolist(), chunks)
            full = prefill(llm, projector, chunks, should_stop)
    except ValueError as exc:  # mtmd could not prepare an image
        raise HerdError(f"The image could not be prepared: {exc}.") from None
    if full is None:
        return None
    return full, len(full) - (len(ids) - len(images)), cached


def image_chunks(
    llm: Any,
    projector: Any,
    ids: Sequence[int],
    images: Sequence[str],
    placeholder: str,
    stack: contextlib.ExitStack[Any],
) -> list[MediaChunk]:
    """A prompt's chunks: its ids, each placeholder token swapped for its image's chunks.

    With a Llama 4 projector an image's chunks are the official sequence of tiles and
    special tokens (:mod:`app.core.engine.image_tiles`); with another, mtmd's own.
    Image handles stay valid until ``stack`` closes.

    Raises:
        HerdError: the placeholders and the images do not pair up, or an image is unusable.
        ValueError: mtmd could not prepare an image.
    """
    from app.core.engine import llama_vision

    slot = _placeholder_id(llm, placeholder, ids, len(images))
    layout = official_layout(projector)
    marker = llama_vision.media_marker()
    tiled = [image_tiles.tile_file(p, layout.geometry) for p in images] if layout else []
    prepared = [] if layout else prepare_images(images)
    chunks: list[MediaChunk] = []
    text: list[int] = []
    index = 0
    for token in ids:
        if token != slot:
            text.append(token)
            continue
        chunks.append(MediaChunk(tuple(text)))
        text = []
        if layout is not None:
            chunks += image_tiles.official_chunks(projector, layout, tiled[index], marker, stack)
        else:
            chunks += stack.enter_context(projector.tokenize(marker, [prepared[index].as_tuple()]))
        index += 1
    chunks.append(MediaChunk(tuple(text)))
    return _merge_text(chunks)


def _placeholder_id(llm: Any, placeholder: str, ids: Sequence[int], n_images: int) -> int:
    from app.core.engine import llama_ext

    found = -1
    slot = -1
    if placeholder:
        slot_ids = llama_ext.tokenize(llm, placeholder.encode("utf-8"), special=True)
        if len(slot_ids) == 1:
            slot = slot_ids[0]
            found = list(ids).count(slot)
    if found != n_images:
        raise HerdError(
            f"The prompt has {max(found, 0)} image placeholder(s) for {n_images} image(s).",
            f"Each image takes one {placeholder!r} of the format; a message's text may not "
            "contain it itself.",
        )
    return slot


def _merge_text(chunks: Sequence[MediaChunk]) -> list[MediaChunk]:
    """Join neighbouring text chunks and drop empty ones (image chunks stay as they are)."""
    merged: list[MediaChunk] = []
    for chunk in chunks:
        if chunk.handle is None and not chunk.tokens:
            continue
        if chunk.handle is None and merged and merged[-1].handle is None:
            merged[-1] = MediaChunk(merged[-1].tokens + chunk.tokens)
        else:
            merged.append(chunk)
    return merged
