"""The vision projector through llama.cpp's mtmd (``llama_cpp.mtmd_cpp``), as ctypes calls.

mtmd loads the projector (an ``mmproj`` GGUF) beside a loaded model and turns a prompt with
media markers plus pixels into chunks that are evaluated into the model's context; the
sampling loop then continues as for text. The text side of llama.cpp is
:mod:`app.core.engine.llama_ext`.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator, Sequence
from typing import Any

import llama_cpp
import llama_cpp.llama_cpp as lib

from app.core.engine.media_chunks import MediaChunk, stand_in_ids


class Projector:
    """A vision projector (an ``mmproj`` GGUF) bound to a loaded model, run by mtmd."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        # Llama 4's official image layout (image_tiles.OfficialLayout), set by the engine
        # once it knows the projector and the model; None: mtmd lays images out itself
        self.official: Any = None

    @classmethod
    def load(cls, path: str, llm: llama_cpp.Llama, *, use_gpu: bool, flash_attn: bool) -> Projector:
        """Load ``path`` for ``llm``.

        Raises:
            RuntimeError: mtmd refused the file (the engine log says why: a width that does
                not match the model's, an unknown projector type, missing tensors).
        """
        import llama_cpp.mtmd_cpp as mtmd

        params = mtmd.mtmd_context_params_default()
        params.use_gpu = use_gpu
        params.print_timings = False
        params.n_threads = llm.n_threads
        params.flash_attn_type = (
            lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        ctx = mtmd.mtmd_init_from_file(path.encode(), llm.model, params)
        if not ctx:
            raise RuntimeError("llama.cpp refused it (the engine log names the reason)")
        if not mtmd.mtmd_support_vision(ctx):
            mtmd.mtmd_free(ctx)
            raise RuntimeError("it has no vision encoder")
        return cls(ctx)

    def close(self) -> None:
        """Free the projector (before its model)."""
        import llama_cpp.mtmd_cpp as mtmd

        if self._ctx:
            mtmd.mtmd_free(self._ctx)
            self._ctx = None

    @contextlib.contextmanager
    def tokenize(
        self,
        text: str,
        images: Sequence[tuple[str, int, int, bytes]],
        *,
        add_special: bool = False,
    ) -> Iterator[list[MediaChunk]]:
        """Split ``text`` at mtmd's media markers and turn each image into its tokens.

        Args:
            text: The prompt, one :func:`media_marker` per image, special tokens parsed.
            images: ``(digest, width, height, RGB bytes)`` per marker, in order.
            add_special: Let the tokenizer add BOS.

        Yields:
            The chunks; image chunks can be evaluated until the context exits.

        Raises:
            ValueError: markers and images do not pair up, or mtmd could not prepare an image.
        """
        import llama_cpp.mtmd_cpp as mtmd

        bitmaps = []
        chunks = mtmd.mtmd_input_chunks_init()
        try:
            for digest, width, height, data in images:
                buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
                bitmap = mtmd.mtmd_bitmap_init(width, height, buf)
                if not bitmap:
                    raise ValueError("an image could not be handed to the projector")
                mtmd.mtmd_bitmap_set_id(bitmap, digest.encode())
                bitmaps.append(bitmap)
            raw = text.encode("utf-8")
            inp = mtmd.mtmd_input_text()
            inp.text, inp.text_len = raw, len(raw)
            inp.add_special, inp.parse_special = add_special, True
            array = (mtmd.mtmd_bitmap_p_ctypes * max(len(bitmaps), 1))(*bitmaps)
            code = mtmd.mtmd_tokenize(self._ctx, chunks, ctypes.byref(inp), array, len(bitmaps))
            if code == 1:
                raise ValueError("the prompt's image markers do not match the images")
            if code != 0:
                raise ValueError(f"the projector could not prepare an image (mtmd error {code})")
            yield _media_chunks(mtmd, chunks)
        finally:
            mtmd.mtmd_input_chunks_free(chunks)
            for bitmap in bitmaps:
                mtmd.mtmd_bitmap_free(bitmap)

    def eval_image(self, llm: llama_cpp.Llama, chunk: MediaChunk, n_past: int) -> int:
        """Encode an image chunk and decode its embeddings at ``n_past``; returns the new end.

        Raises:
            RuntimeError: encoding or decoding failed (or Stop aborted the decode).
        """
        import llama_cpp.mtmd_cpp as mtmd

        new_n_past = lib.llama_pos(0)
        code = mtmd.mtmd_helper_eval_chunk_single(
            self._ctx, llm._ctx.ctx, chunk.handle, n_past, 0, llm.n_batch, False,
            ctypes.byref(new_n_past),
        )  # fmt: skip
        if code != 0:
            raise RuntimeError(f"the image could not be evaluated (mtmd error {code})")
        return int(new_n_past.value)


def media_marker() -> str:
    """The text mtmd replaces with an image's tokens."""
    import llama_cpp.mtmd_cpp as mtmd

    return mtmd.mtmd_default_marker().decode("utf-8")


def _media_chunks(mtmd: Any, chunks: Any) -> list[MediaChunk]:
    result: list[MediaChunk] = []
    seen: dict[bytes, int] = {}  # slices of one image share its id: count them apart
    for i in range(mtmd.mtmd_input_chunks_size(chunks)):
        chunk = mtmd.mtmd_input_chunks_get(chunks, i)
        if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
            n = ctypes.c_size_t()
            ptr = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(n))
            result.append(MediaChunk(tuple(ptr[j] for j in range(n.value))))
            continue
        image_id = mtmd.mtmd_input_chunk_get_id(chunk) or b""
        ordinal = seen.get(image_id, 0)
        seen[image_id] = ordinal + 1
        n_pos = int(mtmd.mtmd_input_chunk_get_n_pos(chunk))
        result.append(MediaChunk(stand_in_ids(image_id, ordinal, n_pos), chunk))
    return result
