"""The gaps in llama-cpp-python 0.3.36 that Herd fills through ctypes, kept in one place.

- llama.cpp's log goes to a file of ours (``llama_log_set``), not to the terminal.
- The model loader gets a progress callback that can also abort the load, tensor
  overrides and ``use_extra_bufts``, and never compiles the file's chat templates
  (:class:`HerdLlama`).
- A context gets an abort callback, so Stop interrupts even a long prompt evaluation.
- Images: llama.cpp's mtmd, in :mod:`app.core.engine.llama_vision`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, TypeVar

import llama_cpp
import llama_cpp.llama_cpp as lib

from app.core.engine import llama_devices
from app.core.engine.engine_config import DEFAULT as DEFAULT_CONFIG
from app.core.engine.engine_config import EngineConfig
from app.core.settings import LoadSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")

KV_TYPES = {"f16": lib.GGML_TYPE_F16, "q8_0": lib.GGML_TYPE_Q8_0, "q4_0": lib.GGML_TYPE_Q4_0}

# ctypes callbacks must outlive every C call that may invoke them.
_log_sinks: list[Any] = []
# Each model's abort callback (set_abort_check), for enable_abort_check to switch back on.
_abort_callbacks: weakref.WeakKeyDictionary[llama_cpp.Llama, Any] = weakref.WeakKeyDictionary()
# Extra readers of the log (e.g. the load collecting where tensors were placed).
_log_listeners: list[Callable[[bytes], None]] = []
_OVERRIDE_LINE = re.compile(rb"tensor (\S+) \(.*\) buffer type overridden to (\S+)")
_BUFFER_LINE = re.compile(rb"(\S+) +(model|KV|compute) buffer size = +([0-9.]+) MiB")


def send_log_to(stream: IO[bytes]) -> None:
    """Route llama.cpp's and ggml's log lines to ``stream`` (an unbuffered binary file)."""

    @lib.llama_log_callback
    def _sink(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        try:
            stream.write(text)
            for listener in _log_listeners:
                listener(text)
        except Exception:  # an exception cannot cross into C; never let a log line kill a decode
            pass

    _log_sinks[:] = [_sink]  # one per process: replaced, never piled up
    lib.llama_log_set(_sink, ctypes.c_void_p(0))


class _BuftOverride(ctypes.Structure):
    """``struct llama_model_tensor_buft_override { const char * pattern; buft; }``."""

    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def override_array(overrides: Sequence[tuple[str, str]]) -> ctypes.Array[_BuftOverride] | None:
    """A NULL-terminated override array for ``llama_model_params.tensor_buft_overrides``."""
    if not overrides:
        return None
    array = (_BuftOverride * (len(overrides) + 1))()
    for i, (pattern, device) in enumerate(overrides):
        array[i].pattern = pattern.encode()
        array[i].buft = llama_devices.buffer_type(device)
    return array  # the last entry stays zeroed: the terminator


class HerdLlama(llama_cpp.Llama):
    """``llama_cpp.Llama`` with the model parameters it does not expose, and no templates.

    llama-cpp-python builds its model parameters from ``llama_model_default_params()`` and
    fills neither the progress callback, the tensor buffer-type overrides nor
    ``use_extra_bufts``; it then compiles every chat template in the GGUF with Jinja, with
    no time or memory limit (a template bomb grew the engine past 5 GB, and a template
    that does not compile made the model unloadable). Herd renders Llama 4 itself and
    checks the file's template in its own bounded sandbox, so the engine never needs them.
    Both gaps are filled here, through the two attributes ``Llama.__init__`` assigns, for
    this object only; nothing in llama-cpp-python is replaced.

    Args:
        on_progress: Called with the load fraction; returns False to abort the load
            (llama.cpp then returns no model and the constructor raises).
        overrides: (tensor-name regex, device name) pairs placing matching tensors in that
            device's buffers (e.g. routed experts on the CPU).
        devices: A NULL-terminated device array (:func:`app.core.engine.llama_devices.device_array`)
            when the load uses other machines' devices; None: llama.cpp's own choice.
        use_extra_bufts: Let llama.cpp repack weights into its extra CPU buffer types (AMX,
            interleaved AVX/NEON layouts); off where the self-check saw them crash.
        **kwargs: ``llama_cpp.Llama``'s own arguments (see :func:`llama_kwargs`).
    """

    def __init__(
        self,
        *,
        on_progress: Callable[[float], bool] | None = None,
        overrides: Sequence[tuple[str, str]] = (),
        use_extra_bufts: bool = True,
        devices: Any = None,
        **kwargs: Any,
    ) -> None:
        self._herd_use_extra_bufts = use_extra_bufts
        self._herd_devices = devices
        self._herd_overrides = override_array(overrides)
        self._herd_progress = None
        if on_progress is not None:

            @lib.llama_progress_callback
            def _progress(fraction: float, user_data: ctypes.c_void_p) -> bool:
                try:
                    return bool(on_progress(float(fraction)))
                except Exception:  # an exception cannot cross into C; abort the load instead
                    logger.exception("progress callback failed")
                    return False

            self._herd_progress = _progress  # held by this object: alive through the load
        super().__init__(**kwargs)

    @property
    def model_params(self) -> Any:
        """The ``llama_model_params`` the model was loaded with."""
        return self._herd_model_params

    @model_params.setter
    def model_params(self, params: Any) -> None:
        if self._herd_progress is not None:
            params.progress_callback = self._herd_progress
        if self._herd_overrides is not None:
            params.tensor_buft_overrides = ctypes.cast(self._herd_overrides, ctypes.c_void_p)
        params.use_extra_bufts = self._herd_use_extra_bufts
        if self._herd_devices is not None:
            params.devices = ctypes.cast(self._herd_devices, ctypes.c_void_p)
        self._herd_model_params = params

    @property
    def metadata(self) -> dict[str, str]:
        """The GGUF's metadata as strings, chat templates left out (see the class doc)."""
        return self._herd_metadata

    @metadata.setter
    def metadata(self, value: dict[str, str]) -> None:
        self._herd_metadata = {
            key: text
            for key, text in value.items()
            if not key.startswith("tokenizer.chat_template")
        }


@contextlib.contextmanager
def _collecting(parse: Callable[[bytes], list[T]]) -> Iterator[list[T]]:
    """While active, everything ``parse`` finds in llama.cpp's log lines, in order."""
    found: list[T] = []

    def _listen(text: bytes) -> None:
        found.extend(parse(text))

    _log_listeners.append(_listen)
    try:
        yield found
    finally:
        _log_listeners.remove(_listen)


def overridden_tensors() -> contextlib.AbstractContextManager[list[tuple[str, str]]]:
    """Collect, while active, llama.cpp's "buffer type overridden" lines as (tensor, buffer)."""
    return _collecting(
        lambda text: [(m[1].decode(), m[2].decode()) for m in _OVERRIDE_LINE.finditer(text)]
    )


def buffer_sizes() -> contextlib.AbstractContextManager[list[tuple[str, str, int]]]:
    """Collect, while active, llama.cpp's buffer sizes as (buffer, "model"/"KV"/"compute", bytes).

    The buffer is llama.cpp's name for it: "CPU_Mapped", "CPU_REPACK", "CUDA0", "CUDA_Host",
    "Metal_Mapped" ... (what the load really allocated, to compare with the plan).
    """
    return _collecting(
        lambda text: [
            (m[1].decode(), m[2].decode(), int(float(m[3]) * 1024 * 1024))
            for m in _BUFFER_LINE.finditer(text)
        ]
    )


def log_lines() -> contextlib.AbstractContextManager[list[str]]:
    """Collect, while active, llama.cpp's log text (to quote its reason for a failure)."""
    return _collecting(lambda text: [text.decode("utf-8", errors="replace")])


def llama_kwargs(
    path: str,
    settings: LoadSettings,
    config: EngineConfig = DEFAULT_CONFIG,
    *,
    verbose: bool = True,
) -> dict[str, Any]:
    """``HerdLlama`` keyword arguments for ``settings`` on a machine needing ``config``.

    One mapping for every caller. ``verbose=True`` keeps llama-cpp-python from redirecting
    fd 2 to /dev/null during the load, so asserts and the log still reach the engine's
    log file.
    """
    threads = config.threads or settings.n_threads
    devices = None
    if settings.rpc_servers:
        devices = llama_devices.device_array(settings.rpc_servers)
    return {
        "devices": devices,
        "model_path": path,
        "use_extra_bufts": config.use_extra_bufts,
        "overrides": settings.tensor_overrides,
        "n_ctx": settings.n_ctx,
        "n_batch": settings.n_batch,
        "n_ubatch": settings.n_ubatch,
        "n_threads": threads,
        "n_threads_batch": threads,
        "n_gpu_layers": settings.n_gpu_layers if config.gpu else 0,
        "flash_attn": settings.flash_attn,
        "swa_full": settings.swa_full,
        "type_k": KV_TYPES[settings.type_k.value],
        "type_v": KV_TYPES[settings.type_v.value],
        "use_mmap": settings.use_mmap,
        "use_mlock": settings.use_mlock,
        "tensor_split": list(settings.tensor_split) or None,
        "verbose": verbose,
    }


def set_abort_check(llm: llama_cpp.Llama, should_abort: Callable[[], bool]) -> None:
    """Make llama.cpp poll ``should_abort`` during every graph computation."""

    @lib.ggml_abort_callback
    def _abort(user_data: ctypes.c_void_p) -> bool:
        try:
            return bool(should_abort())
        except Exception:
            return False

    _abort_callbacks[llm] = _abort  # alive exactly as long as the model
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


def tokenize(llm: llama_cpp.Llama, text: bytes, *, special: bool) -> list[int]:
    """``text`` as ids, no BOS added; ``special``: parse special-token text into tokens.

    The same llama.cpp call as ``Llama.tokenize``, whose buffer is sized by the model's
    training context: for Llama 4 (10M positions) every call zeroes 40 MB, which made a
    prompt tokenized in many pieces (and the token meter) slow.
    """
    size = len(text) + 1  # never more ids than bytes (an empty text gives none)
    while True:
        buf = (lib.llama_token * size)()
        n = lib.llama_tokenize(llm._model.vocab, text, len(text), buf, size, False, special)
        if n >= 0:
            return list(buf[:n])
        size = -n


def is_control(llm: llama_cpp.Llama, token: int) -> bool:
    """Whether ``token`` is one that only special-token parsing produces (control, unknown)."""
    attr = int(lib.llama_vocab_get_attr(llm._model.vocab, token))
    return bool(attr & (lib.LLAMA_TOKEN_ATTR_CONTROL | lib.LLAMA_TOKEN_ATTR_UNKNOWN))


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


def enable_abort_check(llm: llama_cpp.Llama, enabled: bool) -> None:
    """Switch the check of set_abort_check on or off.

    llama.cpp calls it after every graph node, a Python call each time (~0.4 us; hundreds
    per token): worth it while a long prompt is evaluated, not for one-token decodes, where
    the generate loop checks for Stop between tokens anyway.
    """
    callback = _abort_callbacks[llm] if enabled else lib.ggml_abort_callback(0)
    lib.llama_set_abort_callback(llm._ctx.ctx, callback, ctypes.c_void_p(0))


def last_logits(llm: llama_cpp.Llama) -> Any:
    """The logits of the last evaluated position, as a numpy view (no copy)."""
    import numpy as np

    ptr = lib.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, (llm.n_vocab(),))
