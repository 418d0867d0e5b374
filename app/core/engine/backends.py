"""llama.cpp's dynamically loaded backends: the portable engine build of the desktop bundles.

A portable build (``GGML_BACKEND_DL``, ``GGML_CPU_ALL_VARIANTS``) links no backend into
libggml: the CPU backend comes as several modules (``libggml-cpu-x64``, ``-haswell``,
``-zen4``, ``-sapphirerapids``, ...), the GPU and RPC backends as modules of their own, and
ggml picks the CPU variant with the best score for this CPU when it is asked to load them.
llama-cpp-python 0.3.36 installs the modules into ``llama_cpp/lib`` but never asks, and
ggml's default search looks beside the executable (Python, or the bundle's ``herd``), so the
engine asks, once, before anything uses llama.cpp: :func:`load_backends`. A build with the
backends linked in (the source install's) has them registered already and is left alone.

A wheel install turns libggml's version links into copies: llama_cpp opens ``libggml.so``,
libllama links ``libggml.so.0``, and each copy keeps a registry of its own, so the modules are
loaded into each copy (the modules themselves are opened once).
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from pathlib import Path

import llama_cpp

from app.core.errors import EngineError

_CPU_MODULE = re.compile(r"(?:lib)?ggml-cpu-([\w.]+)\.(?:so|dll|dylib)$")


def library_dir() -> Path:
    """The folder of llama-cpp-python's native libraries (and of the backend modules)."""
    return Path(llama_cpp.__file__).resolve().parent / "lib"


def cpu_modules(folder: Path | None = None) -> list[Path]:
    """The CPU variant modules of a portable build (none in a build with the CPU linked in)."""
    folder = folder or library_dir()
    return sorted(p for p in folder.glob("*ggml-cpu-*") if _CPU_MODULE.search(p.name))


def _libggml() -> ctypes.CDLL:
    from llama_cpp._ggml import libggml

    return libggml


def _ggml_copies() -> list[ctypes.CDLL]:
    """Each copy of libggml that llama.cpp uses here: llama_cpp's, and libllama's if another."""
    first = _libggml()
    copies = [first]
    for soname in ("libggml.so.0", "libggml.0.dylib"):  # what libllama links, by its SONAME
        path = library_dir() / soname
        if path.is_file() and not os.path.samefile(path, first._name):
            copies.append(ctypes.CDLL(str(path)))  # the one libllama loaded: same file, same copy
    return copies


def registered_backends(libggml: ctypes.CDLL | None = None) -> int:
    """How many ggml backends are registered (in llama_cpp's libggml, or in ``libggml``)."""
    count = (libggml or _libggml()).ggml_backend_reg_count
    count.restype, count.argtypes = ctypes.c_size_t, []
    return int(count())


def load_backends() -> bool:
    """Load a portable build's backend modules from :func:`library_dir`; True if it did.

    Idempotent, and nothing to do (False) where the backends are linked in. The CPU variant
    is ggml's choice by score, so on an AMX Xeon it is the AMX one; the engine self-check
    then finds whether AMX decodes correctly there, as with a source install.

    Raises:
        EngineError: a portable build whose modules could not be loaded (no CPU backend).
    """
    if registered_backends() > 0:
        return False
    for libggml in _ggml_copies():
        if registered_backends(libggml) == 0:
            load_all = libggml.ggml_backend_load_all_from_path
            load_all.restype, load_all.argtypes = None, [ctypes.c_char_p]
            load_all(str(library_dir()).encode("utf-8"))  # ggml reads the path as UTF-8
        if registered_backends(libggml) == 0:
            raise EngineError(
                f"llama.cpp found none of its backend modules in {library_dir()}.",
                hint="The installation is incomplete: install Herd again.",
            )
    return True


def cpu_variant() -> str:
    """The CPU variant this process loaded ("zen4", "haswell", ...); "" for a built-in CPU."""
    names = [Path(p).name for p in _loaded_libraries()]
    for name in names:
        found = _CPU_MODULE.search(name)
        if found:
            return found.group(1)
    return ""


def _loaded_libraries() -> list[str]:
    """The shared libraries mapped into this process (best effort, per OS)."""
    if sys.platform.startswith("linux"):
        try:
            maps = Path("/proc/self/maps").read_text(errors="replace")
        except OSError:
            return []
        return sorted({line.split()[-1] for line in maps.splitlines() if ".so" in line})
    if sys.platform == "darwin":
        libc = ctypes.CDLL(None)
        libc._dyld_image_count.restype = ctypes.c_uint32
        libc._dyld_get_image_name.restype = ctypes.c_char_p
        libc._dyld_get_image_name.argtypes = [ctypes.c_uint32]
        count = libc._dyld_image_count()
        return [libc._dyld_get_image_name(i).decode(errors="replace") for i in range(count)]
    if sys.platform == "win32":
        kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined,unused-ignore]
        kernel32.GetModuleHandleW.restype = ctypes.c_void_p
        kernel32.GetModuleHandleW.argtypes = [ctypes.c_wchar_p]
        return [p.name for p in cpu_modules() if kernel32.GetModuleHandleW(p.name)]
    return []
