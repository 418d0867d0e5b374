"""A Llama 4 MoE GGUF in F32 whose next-token distributions have structure, for quant quality.

``bench/moe_model.py`` writes a model for speed: its layers are too small to matter, so its
output is a fixed cycle through the vocabulary. Quantization quality needs the opposite: every
layer must change the output, and the next-token distribution must be neither uniform (KL
divergence is then near zero whatever the quant) nor one-hot. So the same tensor layout
(``moe_model._tensor_specs``, the fixture vocabulary padded with filler words) is filled thus:

* every matrix is Student-t (6 degrees of freedom) noise scaled to ``1/sqrt(fan_in)`` (a
  unit input gives a unit output); the heavy tails give the quantizer outliers to deal with,
  as trained weights do;
* the matrices that write into the residual stream (``attn_output``, ``ffn_down*``) are scaled
  by ``RESIDUAL_GAIN`` (0.15): each of a layer's three branches (attention, shared expert,
  routed expert) adds about 15% of the unit-variance token embedding, so the 8 layers together
  move the final state about as far as the embedding itself. At gain 1 the net amplifies
  every error: Q8_0 then gave a mean KL of 0.27 and Q4_K_M 2.5 nats (28% top-1 agreement),
  nothing like a trained model; at 0.15 they give about 0.01 and 0.13, the same order as the
  real SmolLM2-135M in this bench (0.004 and 0.05);
* the router's rows are ``ROUTER_GAIN`` (4) times larger, so the top-1 expert changes from
  token to token (its gain barely changed the KL: 4 and 10 gave the same within 10%);
* the output norm's gain is ``LOGIT_GAIN`` (4): logits are then about N(0, 16), so the source
  puts tens of percent on its top token and spreads the rest over a long tail, roughly like a
  trained model reading ordinary text (the bench prints the source's mean entropy).

Everything is written in F32 (norms and router too), one tensor at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.moe_model import MoeShape, _add_metadata, _tensor_specs, _vocab  # noqa: E402

MODEL_VERSION = 2  # bump when the writer changes: the cached file is then rewritten
LOGIT_GAIN = 4.0
T_DOF = 6.0
RESIDUAL_GAIN = 0.15
ROUTER_GAIN = 4.0

# Scout's proportions at a size two cores quantize in seconds: head size 128, 4:1 query to KV
# heads (Scout's 5:1 does not divide 4 heads), every dimension a multiple of 256, the filler
# vocabulary bringing experts : everything else to about Scout's 8.7 (see bench/moe_model.py).
QUALITY_SHAPE = MoeShape(n_layers=8, n_embd=512, n_ff_exp=1024, n_head=4, n_head_kv=1, n_vocab=5120)


def model_path(shape: MoeShape, folder: Path, seed: int = 0) -> Path:
    """Where the F32 file of ``shape`` is cached."""
    gains = [RESIDUAL_GAIN, ROUTER_GAIN]
    key = json.dumps([MODEL_VERSION, dataclasses.asdict(shape), seed, gains], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return folder / f"moe-quality-{digest}-F32.gguf"


def ensure_model(shape: MoeShape, folder: Path, seed: int = 0) -> Path:
    """The F32 model of ``shape``: the cached file, or written and cached."""
    path = model_path(shape, folder, seed)
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        write_f32(partial, shape, seed)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _matrix(rng: np.random.Generator, dims: tuple[int, ...], gain: float = 1.0) -> np.ndarray:
    """Student-t noise with unit variance per input, scaled by ``gain / sqrt(fan_in)``."""
    data = rng.standard_t(T_DOF, size=dims).astype(np.float32)
    data *= gain / np.sqrt(T_DOF / (T_DOF - 2.0)) / np.sqrt(dims[-1])
    return data


def _tensor(rng: np.random.Generator, name: str, dims: tuple[int, ...]) -> np.ndarray:
    if name == "output_norm.weight":
        return np.full(dims, LOGIT_GAIN, dtype=np.float32)
    if "norm" in name:
        return np.ones(dims, dtype=np.float32)
    if name == "token_embd.weight":
        return rng.standard_normal(dims, dtype=np.float32)
    if "ffn_gate_inp" in name:
        return _matrix(rng, dims, gain=ROUTER_GAIN)
    if "attn_output" in name or "ffn_down" in name:
        return _matrix(rng, dims, gain=RESIDUAL_GAIN)
    return _matrix(rng, dims)


def write_f32(path: Path, shape: MoeShape, seed: int = 0) -> None:
    """Write the model in F32, streaming tensor by tensor."""
    rng = np.random.default_rng(seed)
    tokens, types, merges = _vocab(shape.n_vocab)
    writer = gguf.GGUFWriter(str(path), "llama4")
    _add_metadata(writer, shape, tokens, gguf.LlamaFileType.ALL_F32)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    specs = _tensor_specs(shape)
    for name, dims in specs:
        nbytes = int(np.prod(dims)) * 4
        writer.add_tensor_info(name, dims, np.dtype(np.float32), nbytes, raw_dtype=None)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for name, dims in specs:
        writer.write_tensor_data(_tensor(rng, name, dims))
    writer.close()


def n_params(shape: MoeShape) -> int:
    """Weights in the file (all tensors), for bits per weight."""
    return sum(int(np.prod(dims)) for _, dims in _tensor_specs(shape))


def dequantize_to_f32(src: Path, dst: Path) -> Path:
    """Write ``src`` (any types gguf-py reads) with every tensor dequantized to F32.

    For a real model whose F16 source is not to be had: the F32 copy holds exactly the
    weights of ``src``, so KL divergence against it measures what re-quantizing loses.
    """
    reader = gguf.GGUFReader(str(src))
    arch = str(reader.fields["general.architecture"].contents())
    writer = gguf.GGUFWriter(str(dst), arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue
        vtype = gguf.GGUFValueType(field.types[0])
        sub = gguf.GGUFValueType(field.types[-1]) if vtype is gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub)
    writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    for t in reader.tensors:
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        writer.add_tensor(t.name, data.reshape(tuple(int(d) for d in reversed(t.shape))))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst
