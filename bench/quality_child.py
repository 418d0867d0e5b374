"""The llama.cpp side of ``bench/quantize_quality.py``, run in a child process per step.

A native crash or abort (llama.cpp asserts on some shapes) then fails one step, not the bench.

    python bench/quality_child.py quantize SRC DST SPEC_JSON
    python bench/quality_child.py tokenize MODEL TEXT_FILE N OUT_NPY
    python bench/quality_child.py logits MODEL TOKENS_NPY OUT_NPY

``SPEC_JSON`` is ``{"ftype": int, "overrides": [[regex, ggml_type], ...],
"output_type": int|null, "embd_type": int|null}``: llama.cpp's ``llama_ftype`` picks the base
mix, and each override (first match wins, as in ``llama-quantize --tensor-type``) replaces it.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

THREADS = min(4, os.cpu_count() or 1)


def quantize(src: str, dst: str, spec: dict[str, Any]) -> int:
    """Run ``llama_model_quantize``; returns its status (0 = written)."""
    import llama_cpp.llama_cpp as lib

    lib.llama_backend_init()
    params = lib.llama_model_quantize_default_params()
    params.ftype = int(spec["ftype"])
    params.nthread = THREADS
    if spec.get("output_type") is not None:
        params.output_tensor_type = int(spec["output_type"])
    if spec.get("embd_type") is not None:
        params.token_embedding_type = int(spec["embd_type"])
    overrides = spec.get("overrides") or []
    keep: list[bytes] = []  # the patterns must outlive the call
    if overrides:
        table = (lib.llama_model_tensor_override * (len(overrides) + 1))()
        for i, (pattern, ggml_type) in enumerate(overrides):
            keep.append(str(pattern).encode())
            table[i].pattern = keep[-1]
            table[i].type = int(ggml_type)
        table[len(overrides)].pattern = None  # the list ends at a null pattern
        params.tt_overrides = ctypes.cast(table, ctypes.POINTER(lib.llama_model_tensor_override))
    return int(lib.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params)))


def _load(model: str, n_ctx: int, logits_all: bool) -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=model,
        n_ctx=n_ctx,
        n_batch=512,
        n_ubatch=512,
        n_threads=THREADS,
        n_threads_batch=THREADS,
        n_gpu_layers=0,
        logits_all=logits_all,
        verbose=False,
    )


def tokenize(model: str, text_file: str, n: int, out: str) -> int:
    """Tokenize the text with the model's own tokenizer; keep the first ``n`` tokens."""
    llm = _load(model, 64, logits_all=False)
    text = Path(text_file).read_text(encoding="utf-8")
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)[:n]
    np.save(out, np.asarray(tokens, dtype=np.int32))
    return 0


def logits(model: str, tokens_npy: str, out: str) -> int:
    """Every position's logits over the fixed tokens, as float32 ``[n_tokens, n_vocab]``."""
    tokens = [int(t) for t in np.load(tokens_npy)]
    llm = _load(model, len(tokens) + 16, logits_all=True)
    llm.eval(tokens)
    np.save(out, np.asarray(llm.scores[: len(tokens)], dtype=np.float32))
    return 0


def main(argv: list[str]) -> int:
    """Dispatch one step."""
    op, args = argv[0], argv[1:]
    if op == "quantize":
        return quantize(args[0], args[1], json.loads(args[2]))
    if op == "tokenize":
        return tokenize(args[0], args[1], int(args[2]), args[3])
    if op == "logits":
        return logits(args[0], args[1], args[2])
    raise SystemExit(f"unknown step {op!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
