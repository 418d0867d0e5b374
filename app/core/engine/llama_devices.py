"""llama.cpp's devices and build, through ggml's backend API (ctypes; no model needed).

llama-cpp-python 0.3.36 wraps none of ggml's backend device API; the symbols are exported
by libggml, so they are declared here: the device list (with free memory), a device's
buffer type (for tensor overrides), the backends compiled in, and the build's CPU features.

Also llama.cpp's RPC backend (``ggml-rpc.h``, protocol 7.0.0, declared by llama-cpp-python
but not wrapped): serving this machine's devices (``herd worker``) and using a worker's.
Its functions are reached the way llama.cpp's own tools reach a backend that may be built
in or loaded at run time: the "RPC" registration's proc addresses, so this works whichever
library holds them. A build without ``-DGGML_RPC=ON`` has none: :class:`RpcUnavailable`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import llama_cpp
import llama_cpp.llama_cpp as lib

from app.core.errors import HerdError


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


# --- llama.cpp's RPC backend ---------------------------------------------------------

_START_SERVER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p
)
_ADD_SERVER = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)
# enum ggml_backend_dev_type (see app.core.hardware.probe)
_DEVICE_GPU, _DEVICE_IGPU = 1, 2
_keep: list[Any] = []  # device arrays handed to llama.cpp stay alive with the process


class RpcUnavailable(HerdError):
    """This llama.cpp was built without its RPC backend."""


def _rpc_ggml() -> Any:
    from llama_cpp._ggml import libggml

    for name, res, args in (
        ("ggml_backend_reg_by_name", ctypes.c_void_p, [ctypes.c_char_p]),
        ("ggml_backend_reg_get_proc_address", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]),
        ("ggml_backend_reg_dev_count", ctypes.c_size_t, [ctypes.c_void_p]),
        ("ggml_backend_reg_dev_get", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t]),
        ("ggml_backend_dev_count", ctypes.c_size_t, []),
        ("ggml_backend_dev_get", ctypes.c_void_p, [ctypes.c_size_t]),
        ("ggml_backend_dev_by_name", ctypes.c_void_p, [ctypes.c_char_p]),
        ("ggml_backend_dev_type", ctypes.c_int, [ctypes.c_void_p]),
        ("ggml_backend_dev_name", ctypes.c_char_p, [ctypes.c_void_p]),
    ):
        fn = getattr(libggml, name)
        fn.restype, fn.argtypes = res, args
    return libggml


def _proc(name: str) -> int:
    """The address of one of the RPC backend's functions.

    Raises:
        RpcUnavailable: this build has no RPC backend.
    """
    lib.llama_backend_init()
    ggml = _rpc_ggml()
    reg = ggml.ggml_backend_reg_by_name(b"RPC")
    address = ggml.ggml_backend_reg_get_proc_address(reg, name.encode()) if reg else None
    if not address:
        raise RpcUnavailable(
            "This llama.cpp was built without its RPC backend, so it cannot use or serve "
            "other machines.",
            'Rebuild it with CMAKE_ARGS="-DGGML_RPC=ON" (installer/setup-venv.sh does).',
        )
    return int(address)


def require_rpc() -> None:
    """Raise :class:`RpcUnavailable` (with the fix) when this build has no RPC backend."""
    _proc("ggml_backend_rpc_start_server")


def rpc_available() -> bool:
    """Whether this llama.cpp has its RPC backend."""
    try:
        _proc("ggml_backend_rpc_add_server")
    except RpcUnavailable:
        return False
    return True


def local_device(name: str) -> int:
    """A device of this machine by llama.cpp's name ("CPU", "CUDA0").

    Raises:
        HerdError: there is none by that name.
    """
    lib.llama_backend_init()
    dev = _rpc_ggml().ggml_backend_dev_by_name(name.encode())
    if not dev:
        raise HerdError(f"llama.cpp has no device named {name!r} here.")
    return int(dev)


def local_gpus() -> list[int]:
    """This machine's GPU devices, in llama.cpp's order (what it offloads to by default)."""
    lib.llama_backend_init()
    ggml = _rpc_ggml()
    out = []
    for i in range(ggml.ggml_backend_dev_count()):
        dev = ggml.ggml_backend_dev_get(i)
        if ggml.ggml_backend_dev_type(dev) in (_DEVICE_GPU, _DEVICE_IGPU):
            out.append(int(dev))
    return out


def start_server(
    endpoint: str, devices: Sequence[int], *, threads: int, cache_dir: str | None
) -> None:
    """Serve ``devices`` on ``endpoint`` until the process ends (llama.cpp's accept loop).

    Returns only when llama.cpp could not start (the port is taken, say); it says why on
    its standard error.
    """
    serve = _START_SERVER(_proc("ggml_backend_rpc_start_server"))
    array = (ctypes.c_void_p * len(devices))(*devices)
    cache = cache_dir.encode() if cache_dir else None
    serve(endpoint.encode(), cache, threads, len(devices), ctypes.cast(array, ctypes.c_void_p))


def remote_devices(endpoint: str) -> list[int]:
    """The devices the worker at ``endpoint`` serves, as devices of this process.

    llama.cpp connects at once; a worker that cannot be reached aborts the process
    (its RPC client knows no other way), which the app reports as the engine stopping.
    """
    add = _ADD_SERVER(_proc("ggml_backend_rpc_add_server"))
    reg = add(endpoint.encode())
    if not reg:
        raise HerdError(f"The worker {endpoint} serves no devices.")
    ggml = _rpc_ggml()
    return [
        int(ggml.ggml_backend_reg_dev_get(reg, i))
        for i in range(ggml.ggml_backend_reg_dev_count(reg))
    ]


def device_array(entries: Sequence[str]) -> Any:
    """The NULL-terminated ``llama_model_params.devices`` for a load across workers.

    ``entries``: ``HOST:PORT#N`` (that worker's device N) or ``HOST:PORT`` (all of its
    devices), in order; then this machine's GPUs. That is the order the plan's
    ``tensor_split`` counts in, and llama.cpp's own when it finds RPC servers (its first
    layers go to the workers, its last layers and the output stay here).
    """
    devices: list[int] = []
    for entry in entries:
        endpoint, _, index = entry.partition("#")
        served = remote_devices(endpoint)
        devices += [served[int(index)]] if index else served
    devices += local_gpus()
    array = (ctypes.c_void_p * (len(devices) + 1))(*devices)
    _keep.append(array)
    return array
