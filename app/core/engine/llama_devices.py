"""llama.cpp's devices and build, through ggml's backend API (ctypes; no model needed).

llama-cpp-python 0.3.36 wraps none of ggml's backend device API; the symbols are exported
by libggml, so they are declared here: the device list (with free memory), a device's
buffer type (for tensor overrides), the backends compiled in, and the build's CPU features.
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import llama_cpp.llama_cpp as lib


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
