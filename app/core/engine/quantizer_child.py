"""The quantizer's child: one ``llama_model_quantize`` call, then exit with its status.

Run by :mod:`app.core.engine.quantizer` as ``python -m app.core.engine.quantizer_child
SPEC.json``. llama.cpp's log (one line per tensor, and "failed to quantize: why") goes to
stderr, which the parent keeps as the job's log. The per-tensor types go to
``tt_overrides`` and the importance matrix to ``imatrix``: NULL-terminated arrays built
from llama-cpp-python's own structures, kept alive for the whole call.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any


def _quantize(spec: dict[str, Any]) -> int:
    import numpy as np

    from app.core.engine import llama_ext
    from app.core.engine.llama_ext import lib  # llama_cpp's ctypes layer, owned there

    llama_ext.send_log_to(os.fdopen(2, "wb", buffering=0, closefd=False))
    lib.llama_backend_init()
    params = lib.llama_model_quantize_default_params()
    params.nthread = int(spec["threads"])
    params.ftype = int(spec["ftype"])
    params.keep_split = bool(spec["keep_split"])
    params.dry_run = bool(spec["dry_run"])
    if spec["token_embd"] is not None:
        params.token_embedding_type = int(spec["token_embd"])
    if spec["output"] is not None:
        params.output_tensor_type = int(spec["output"])

    overrides = spec["overrides"]
    tt = (lib.llama_model_tensor_override * (len(overrides) + 1))()
    for i, (pattern, qtype) in enumerate(overrides):
        tt[i].pattern = str(pattern).encode()
        tt[i].type = int(qtype)
    tt[len(overrides)].pattern = None  # the terminator llama.cpp stops at
    if overrides:
        params.tt_overrides = ctypes.cast(tt, ctypes.POINTER(lib.llama_model_tensor_override))

    keep: list[Any] = []  # every buffer llama.cpp reads, alive until it returns
    if spec["imatrix"]:
        with np.load(spec["imatrix"]) as npz:
            arrays = {name: np.ascontiguousarray(npz[name], dtype=np.float32) for name in npz}
        im = (lib.llama_model_imatrix_data * (len(arrays) + 1))()
        for i, (name, values) in enumerate(arrays.items()):
            raw = name.encode()
            keep += [raw, values]
            im[i].name = raw
            im[i].data = values.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            im[i].size = values.size
        im[len(arrays)].name = None
        params.imatrix = ctypes.cast(im, ctypes.POINTER(lib.llama_model_imatrix_data))
        keep.append(im)
    rc = lib.llama_model_quantize(
        str(spec["src"]).encode(), str(spec["dst"]).encode(), ctypes.byref(params)
    )
    sys.stderr.flush()
    return int(rc)


def main() -> None:
    """Read the spec named on the command line, quantize, exit with llama.cpp's status."""
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    from app.core.engine import backends

    backends.load_backends()  # a portable build (the bundles) registers its CPU backend here
    rc = _quantize(spec)
    os._exit(0 if rc == 0 else 1)  # skip llama.cpp's teardown: the file is written


if __name__ == "__main__":
    main()
