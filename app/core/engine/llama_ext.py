"""The gaps in llama-cpp-python 0.3.36 that Herd fills through ctypes, kept in one place.

- llama.cpp's log goes to a file of ours (``llama_log_set``), not to the terminal.
- The model loader gets a progress callback that can also abort the load, tensor
  overrides and ``use_extra_bufts``, and never compiles the file's chat templates
  (:class:`HerdLlama`).
- A context gets an abort callback, so Stop interrupts even a long prompt evaluation.
- Images: llama.cpp's mtmd (``llama_cpp.mtmd_cpp``) loads the vision projector and turns
  a prompt with media markers plus pixels into chunks that are evaluated into the model's
  context; the sampling loop then continues as for text.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import llama_cpp
import llama_cpp.llama_cpp as lib

from app.core.engine.engine_config import DEFAULT as DEFAULT_CONFIG
from app.core.engine.engine_config import EngineConfig
from app.core.engine.media_chunks import MediaChunk, stand_in_ids
from app.core.settings import LoadSettings

logger = logging.getLogger(__name__)

KV_TYPES = {"f16": lib.GGML_TYPE_F16, "q8_0": lib.GGML_TYPE_Q8_0, "q4_0": lib.GGML_TYPE_Q4_0}

# ctypes callbacks must outlive every C call that may invoke them.
_keep_alive: list[Any] = []
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

    _keep_alive.append(_sink)
    lib.llama_log_set(_sink, ctypes.c_void_p(0))


class _BuftOverride(ctypes.Structure):
    """``struct llama_model_tensor_buft_override { const char * pattern; buft; }``."""

    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def buffer_type(device_name: str) -> int:
    """The ggml buffer type of a backend device by llama.cpp's name ("CPU", "CUDA0", ...).

    Raises:
        ValueError: no such device in this build of llama.cpp.
    """
    from llama_cpp._ggml import libggml

    by_name = libggml.ggml_backend_dev_by_name
    by_name.restype, by_name.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    dev_buft = libggml.ggml_backend_dev_buffer_type
    dev_buft.restype, dev_buft.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    device = by_name(device_name.encode())
    if not device:
        raise ValueError(f"llama.cpp has no device named {device_name!r}")
    return int(dev_buft(device))


def override_array(overrides: Sequence[tuple[str, str]]) -> ctypes.Array[_BuftOverride] | None:
    """A NULL-terminated override array for ``llama_model_params.tensor_buft_overrides``."""
    if not overrides:
        return None
    array = (_BuftOverride * (len(overrides) + 1))()
    for i, (pattern, device) in enumerate(overrides):
        array[i].pattern = pattern.encode()
        array[i].buft = buffer_type(device)
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
        **kwargs: Any,
    ) -> None:
        self._herd_use_extra_bufts = use_extra_bufts
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

            self._herd_progress = _progress
            _keep_alive.append(_progress)
        if self._herd_overrides is not None:
            _keep_alive.append(self._herd_overrides)
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
def overridden_tensors() -> Iterator[list[tuple[str, str]]]:
    """Collect, while active, llama.cpp's "buffer type overridden" lines as (tensor, buffer)."""
    found: list[tuple[str, str]] = []

    def _listen(text: bytes) -> None:
        m = _OVERRIDE_LINE.search(text)
        if m:
            found.append((m[1].decode(), m[2].decode()))

    _log_listeners.append(_listen)
    try:
        yield found
    finally:
        _log_listeners.remove(_listen)


@contextlib.contextmanager
def buffer_sizes() -> Iterator[list[tuple[str, str, int]]]:
    """Collect, while active, llama.cpp's buffer sizes as (buffer, "model"/"KV"/"compute", bytes).

    The buffer is llama.cpp's name for it: "CPU_Mapped", "CPU_REPACK", "CUDA0", "CUDA_Host",
    "Metal_Mapped" ... (what the load really allocated, to compare with the plan).
    """
    found: list[tuple[str, str, int]] = []

    def _listen(text: bytes) -> None:
        for m in _BUFFER_LINE.finditer(text):
            found.append((m[1].decode(), m[2].decode(), int(float(m[3]) * 1024 * 1024)))

    _log_listeners.append(_listen)
    try:
        yield found
    finally:
        _log_listeners.remove(_listen)


@contextlib.contextmanager
def log_lines() -> Iterator[list[str]]:
    """Collect, while active, llama.cpp's log lines (to quote its reason for a failure)."""
    found: list[str] = []

    def _listen(text: bytes) -> None:
        found.append(text.decode("utf-8", errors="replace"))

    _log_listeners.append(_listen)
    try:
        yield found
    finally:
        _log_listeners.remove(_listen)


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
    return {
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
    callback = llm._abort_callback if enabled else lib.ggml_abort_callback(0)
    lib.llama_set_abort_callback(llm._ctx.ctx, callback, ctypes.c_void_p(0))


def backend_devices() -> list[tuple[str, str, int, int, int]]:
    """llama.cpp's own devices as (name, description, type, free bytes, total bytes).

    llama-cpp-python 0.3.36 wraps none of ggml's backend device API; the symbols are
    exported by libggml, so they are declared here.
    """
    from llama_cpp._ggml import libggml

    lib.llama_backend_init()
    count = libggml.ggml_backend_dev_count
    count.restype, count.argtypes = ctypes.c_size_t, []
    get = libggml.ggml_backend_dev_get
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        fn = getattr(libggml, name)
        fn.restype, fn.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    kind = libggml.ggml_backend_dev_type
    kind.restype, kind.argtypes = ctypes.c_int, [ctypes.c_void_p]
    memory = libggml.ggml_backend_dev_memory
    memory.restype = None
    size_p = ctypes.POINTER(ctypes.c_size_t)
    memory.argtypes = [ctypes.c_void_p, size_p, size_p]
    found = []
    for i in range(count()):
        dev = get(i)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        memory(dev, ctypes.byref(free), ctypes.byref(total))
        found.append(
            (
                libggml.ggml_backend_dev_name(dev).decode(),
                libggml.ggml_backend_dev_description(dev).decode(errors="replace"),
                int(kind(dev)),
                free.value,
                total.value,
            )
        )
    return found


def system_info() -> str:
    """llama.cpp's one-line summary of the CPU features its build uses."""
    lib.llama_backend_init()
    return lib.llama_print_system_info().decode(errors="replace").strip()


def build_facts() -> dict[str, Any]:
    """This llama.cpp build: version, backends, what it supports (for ``herd doctor``)."""
    return {
        "llama_cpp_python": getattr(llama_cpp, "__version__", ""),
        "backends": backend_names(),
        "supports_gpu_offload": bool(lib.llama_supports_gpu_offload()),
        "supports_rpc": bool(lib.llama_supports_rpc()),
        "supports_mmap": bool(lib.llama_supports_mmap()),
        "system_info": system_info(),
    }


def last_logits(llm: llama_cpp.Llama) -> Any:
    """The logits of the last evaluated position, as a numpy view (no copy)."""
    import numpy as np

    ptr = lib.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, (llm.n_vocab(),))


def backend_names() -> list[str]:
    """The backends compiled into (or loaded by) this llama.cpp: "CPU", "CUDA", "RPC", ..."""
    from llama_cpp._ggml import libggml

    lib.llama_backend_init()
    count = libggml.ggml_backend_reg_count
    count.restype, count.argtypes = ctypes.c_size_t, []
    get = libggml.ggml_backend_reg_get
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    name = libggml.ggml_backend_reg_name
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    return [name(get(i)).decode(errors="replace") for i in range(count())]


# -- vision: llama.cpp's mtmd (the projector runs in the engine, beside the model) -----------
class Projector:
    """A vision projector (an ``mmproj`` GGUF) bound to a loaded model, run by mtmd."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

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
