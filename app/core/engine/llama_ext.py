"""The gaps in llama-cpp-python 0.3.36 that Herd fills through ctypes, kept in one place.

- llama.cpp's log goes to a file of ours (``llama_log_set``), not to the terminal.
- The model loader gets a progress callback that can also abort the load.
- A context gets an abort callback, so Stop interrupts even a long prompt evaluation.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from collections.abc import Callable, Iterator
from typing import IO, Any

import llama_cpp
import llama_cpp.llama_cpp as lib

logger = logging.getLogger(__name__)

KV_TYPES = {"f16": lib.GGML_TYPE_F16, "q8_0": lib.GGML_TYPE_Q8_0, "q4_0": lib.GGML_TYPE_Q4_0}

# ctypes callbacks must outlive every C call that may invoke them.
_keep_alive: list[Any] = []


def send_log_to(stream: IO[bytes]) -> None:
    """Route llama.cpp's and ggml's log lines to ``stream`` (an unbuffered binary file)."""

    @lib.llama_log_callback
    def _sink(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        try:
            stream.write(text)
        except (OSError, ValueError):  # never let a log write kill a decode
            pass

    _keep_alive.append(_sink)
    lib.llama_log_set(_sink, ctypes.c_void_p(0))


@contextlib.contextmanager
def load_hooks(on_progress: Callable[[float], bool]) -> Iterator[None]:
    """While active, models loaded through ``llama_cpp.Llama`` report progress.

    ``on_progress(fraction)`` returns False to abort the load; llama.cpp then returns no
    model and ``Llama()`` raises. llama-cpp-python builds its model params from
    ``llama_model_default_params()`` and never fills the callback, so we hand it
    defaults that already carry ours.
    """
    original = lib.llama_model_default_params

    @lib.llama_progress_callback
    def _progress(fraction: float, user_data: ctypes.c_void_p) -> bool:
        try:
            return bool(on_progress(float(fraction)))
        except Exception:  # an exception cannot cross into C; abort the load instead
            logger.exception("progress callback failed")
            return False

    def _defaults() -> Any:
        params = original()
        params.progress_callback = _progress
        return params

    _keep_alive.append(_progress)
    lib.llama_model_default_params = _defaults
    try:
        yield
    finally:
        lib.llama_model_default_params = original


def set_abort_check(llm: llama_cpp.Llama, should_abort: Callable[[], bool]) -> None:
    """Make llama.cpp poll ``should_abort`` during every graph computation."""

    @lib.ggml_abort_callback
    def _abort(user_data: ctypes.c_void_p) -> bool:
        try:
            return bool(should_abort())
        except Exception:
            return False

    _keep_alive.append(_abort)
    llm._abort_callback = _abort  # tie its lifetime to the model as well
    lib.llama_set_abort_callback(llm._ctx.ctx, _abort, ctypes.c_void_p(0))


def clear_memory(llm: llama_cpp.Llama) -> None:
    """Drop the whole KV cache (after an aborted decode its state is not trusted)."""
    memory = lib.llama_get_memory(llm._ctx.ctx)
    if memory:
        lib.llama_memory_clear(memory, True)
    llm.reset()


def model_description(llm: llama_cpp.Llama) -> str:
    """llama.cpp's one-line description, e.g. ``llama4 17Bx16E (Scout) Q8_0``."""
    buf = ctypes.create_string_buffer(256)
    lib.llama_model_desc(llm._model.model, buf, ctypes.sizeof(buf))
    return buf.value.decode("utf-8", errors="replace")


def model_size(llm: llama_cpp.Llama) -> tuple[int, int]:
    """(parameter count, bytes of weights)."""
    return int(lib.llama_model_n_params(llm._model.model)), int(
        lib.llama_model_size(llm._model.model)
    )


def is_end_of_generation(llm: llama_cpp.Llama, token: int) -> bool:
    """True for the model's end-of-generation tokens (eos, eot, eom ...)."""
    return bool(lib.llama_vocab_is_eog(llm._model.vocab, token))


def wants_bos(llm: llama_cpp.Llama) -> bool:
    """Whether the model's tokenizer expects a BOS token at the start of a prompt."""
    return bool(lib.llama_vocab_get_add_bos(llm._model.vocab))


def token_bytes(llm: llama_cpp.Llama, token: int, *, special: bool = False) -> bytes:
    """The bytes of one token, however long.

    llama-cpp-python's ``detokenize`` uses a 32-byte buffer and silently drops longer
    pieces (llama.cpp then returns the needed size, negated); Llama 4's 202k vocabulary
    has such tokens (runs of spaces, code), so a reply would lose text.
    """
    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = lib.llama_token_to_piece(llm._model.vocab, token, buf, size, 0, special)
        if n >= 0:
            return buf.raw[:n]
        size = -n
