"""A Llama 4 Scout-shaped MoE GGUF of about 1 GB, for CPU decode benchmarks, cached.

The layout is what llama.cpp's llama4 loader expects (the rules are spelled out in
``tests/fixtures/tiny_llama4.py``): every layer MoE as in Scout (interleave step 1, since
layer ``il`` is MoE when ``(il + 1) % step == 0``), 16 routed experts of which 1 is used per
token, plus a shared expert; at least 4 layers, as every 4th attends globally and the other
three in chunks (chunked attention is on unless ``sliding_window`` is 0).

The dimensions are Scout's scaled down: head size 128 and Scout's 5:1 query to KV heads,
every matrix dimension a multiple of 256 (Q4_K's block), and the vocabulary sized so that
routed experts : everything else (in parameters) is Scout's ratio; the output matrix, read
whole for every token, then has Scout's share of a token's reads too.

The weights are random, written in F16 with the ``gguf`` package one tensor at a time, then
quantized to Q4_K_M by llama.cpp's own quantizer in a child process; only the Q4_K_M file is
kept, under a name made from a hash of the parameters. Greedy decoding walks one long cycle
through the vocabulary, so every token differs from the last and routes to other experts,
as real text does, and it never ends early: each plain token's output row is the embedding
of the token before it in a random cycle over the plain tokens, the layers' weights are too
small to turn the hidden state away from the input embedding, and the special tokens' output
rows (end of turn among them) are zero.

    python bench/moe_model.py [FOLDER]      # write (or find) the model, print its path
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.tiny_llama4 import SPECIAL_TOKENS, tiny_vocab  # noqa: E402

MODEL_VERSION = 2  # bump when the writer changes: the cached file is then rewritten
DEFAULT_CACHE = Path.home() / ".cache" / "herd-bench"
HEAD_DIM = 128
_F16, _F32 = gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32


@dataclass(frozen=True, slots=True)
class MoeShape:
    """The dimensions of a Llama 4 MoE text model (every layer MoE)."""

    n_layers: int
    n_embd: int
    n_ff_exp: int
    n_head: int
    n_head_kv: int
    n_vocab: int
    n_experts: int = 16
    n_expert_used: int = 1

    def routed_params(self) -> int:
        """Parameters of the routed experts."""
        return self.n_layers * self.n_experts * 3 * self.n_embd * self.n_ff_exp

    def dense_params(self) -> int:
        """Parameters of everything else: attention, shared expert, router, norms, vocab."""
        e, hd = self.n_embd, HEAD_DIM
        attn = 2 * e * self.n_head * hd + 2 * e * self.n_head_kv * hd
        layer = attn + 3 * e * self.n_ff_exp + self.n_experts * e + 2 * e
        return self.n_layers * layer + 2 * self.n_vocab * e + e

    def expert_dense_ratio(self) -> float:
        """Routed-expert parameters per parameter of everything else."""
        return self.routed_params() / self.dense_params()


SCOUT = MoeShape(n_layers=48, n_embd=5120, n_ff_exp=8192, n_head=40, n_head_kv=8, n_vocab=202048)


def scaled_scout(n_layers: int = 12, n_embd: int = 1280) -> MoeShape:
    """Scout with ``n_embd`` (a multiple of 1280 keeps Scout's ratios exact) and
    ``n_layers``; the vocabulary (a multiple of 256) restores Scout's expert:dense ratio."""
    n_head = n_embd // HEAD_DIM
    base = MoeShape(
        n_layers=n_layers,
        n_embd=n_embd,
        n_ff_exp=n_embd * SCOUT.n_ff_exp // SCOUT.n_embd,
        n_head=n_head,
        n_head_kv=max(1, n_head * SCOUT.n_head_kv // SCOUT.n_head),
        n_vocab=0,
    )
    wanted_dense = base.routed_params() / SCOUT.expert_dense_ratio()
    vocab = (wanted_dense - base.dense_params()) / (2 * n_embd)
    return dataclasses.replace(base, n_vocab=max(256, round(vocab / 256) * 256))


def model_path(shape: MoeShape, folder: Path = DEFAULT_CACHE, seed: int = 0) -> Path:
    """Where the Q4_K_M file of ``shape`` is cached."""
    key = json.dumps([MODEL_VERSION, dataclasses.asdict(shape), seed], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return folder / f"moe-scout-like-{digest}-Q4_K_M.gguf"


def ensure_model(shape: MoeShape, folder: Path = DEFAULT_CACHE, seed: int = 0) -> Path:
    """The Q4_K_M model of ``shape``: the cached file, or written, quantized and cached."""
    path = model_path(shape, folder, seed)
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="moe-f16-", dir=folder) as tmp:
        f16 = Path(tmp) / "model-f16.gguf"
        partial = Path(tmp) / path.name
        print(f"writing {shape} in F16 to {f16} ...", flush=True)
        write_f16(f16, shape, seed)
        print(f"quantizing to Q4_K_M ({f16.stat().st_size / 1e9:.2f} GB in F16) ...", flush=True)
        quantize_q4_k_m(f16, partial)
        os.replace(partial, path)
    return path


def _vocab(n_vocab: int) -> tuple[list[str], list[int], list[str]]:
    """Byte-level BPE vocabulary (the fixture's), padded with plain words to ``n_vocab``."""
    tokens, types, merges = tiny_vocab()
    n_bpe = len(tokens) - len(SPECIAL_TOKENS)
    bpe = tokens[:n_bpe]
    known = set(bpe)
    # "\u0120" is GPT-2's byte alphabet for a space: these read as " w00042"
    fillers = [f"\u0120w{i:05d}" for i in range(n_vocab - len(tokens))]
    if known.intersection(fillers):
        raise ValueError("a filler token collides with a BPE token")
    normal = int(gguf.TokenType.NORMAL)
    return (
        [*bpe, *fillers, *SPECIAL_TOKENS],
        [*types[:n_bpe], *[normal] * len(fillers), *types[n_bpe:]],
        merges,
    )


def _add_metadata(
    writer: gguf.GGUFWriter,
    shape: MoeShape,
    tokens: list[str],
    file_type: gguf.LlamaFileType = gguf.LlamaFileType.MOSTLY_F16,
) -> None:
    writer.add_name(f"Scout-shaped MoE bench ({shape.n_layers} layers, {shape.n_embd} wide)")
    writer.add_file_type(int(file_type))
    writer.add_vocab_size(len(tokens))
    writer.add_context_length(32768)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layers)
    writer.add_feed_forward_length(2 * shape.n_ff_exp)  # Scout's dense size; no dense layers
    writer.add_expert_feed_forward_length(shape.n_ff_exp)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_key_length(HEAD_DIM)
    writer.add_value_length(HEAD_DIM)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(500000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_expert_count(shape.n_experts)
    writer.add_expert_used_count(shape.n_expert_used)
    writer.add_interleave_moe_layer_step(1)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("llama4")
    writer.add_bos_token_id(tokens.index("<|begin_of_text|>"))
    writer.add_eos_token_id(tokens.index("<|eot|>"))
    writer.add_eot_token_id(tokens.index("<|eot|>"))
    writer.add_eom_token_id(tokens.index("<|eom|>"))
    writer.add_pad_token_id(tokens.index("<|finetune_right_pad|>"))
    writer.add_add_bos_token(False)


def _tensor_specs(shape: MoeShape) -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor's name and numpy shape (ggml's reversed), in file order."""
    e, f, n_exp = shape.n_embd, shape.n_ff_exp, shape.n_experts
    n_q, n_kv = shape.n_head * HEAD_DIM, shape.n_head_kv * HEAD_DIM
    specs = [
        ("token_embd.weight", (shape.n_vocab, e)),
        ("output_norm.weight", (e,)),
        ("output.weight", (shape.n_vocab, e)),
    ]
    for il in range(shape.n_layers):
        b = f"blk.{il}"
        specs += [
            (f"{b}.attn_norm.weight", (e,)),
            (f"{b}.attn_q.weight", (n_q, e)),
            (f"{b}.attn_k.weight", (n_kv, e)),
            (f"{b}.attn_v.weight", (n_kv, e)),
            (f"{b}.attn_output.weight", (e, n_q)),
            (f"{b}.ffn_norm.weight", (e,)),
            (f"{b}.ffn_gate_inp.weight", (n_exp, e)),
            (f"{b}.ffn_gate_exps.weight", (n_exp, f, e)),
            (f"{b}.ffn_up_exps.weight", (n_exp, f, e)),
            (f"{b}.ffn_down_exps.weight", (n_exp, e, f)),
            (f"{b}.ffn_gate_shexp.weight", (f, e)),
            (f"{b}.ffn_up_shexp.weight", (f, e)),
            (f"{b}.ffn_down_shexp.weight", (e, f)),
        ]
    return specs


def _is_f32(name: str) -> bool:
    return "norm" in name or "ffn_gate_inp" in name  # llama.cpp keeps these in F32


def _random(rng: np.random.Generator, dims: tuple[int, ...]) -> np.ndarray:
    data = rng.standard_normal(dims, dtype=np.float32)
    data *= 0.002  # small: the hidden state stays close to the input token's embedding
    return data


def write_f16(path: Path, shape: MoeShape, seed: int = 0) -> None:
    """Write the random model in F16 (norms and router F32), streaming tensor by tensor."""
    rng = np.random.default_rng(seed)
    tokens, types, merges = _vocab(shape.n_vocab)
    writer = gguf.GGUFWriter(str(path), "llama4")
    _add_metadata(writer, shape, tokens)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    specs = _tensor_specs(shape)
    for name, dims in specs:
        dtype = np.float32 if _is_f32(name) else np.float16
        nbytes = int(np.prod(dims)) * np.dtype(dtype).itemsize
        writer.add_tensor_info(name, dims, np.dtype(dtype), nbytes, raw_dtype=None)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    n_plain = shape.n_vocab - len(SPECIAL_TOKENS)
    embd = rng.standard_normal((shape.n_vocab, shape.n_embd), dtype=np.float32) * 0.02
    cycle = rng.permutation(n_plain)
    output = np.zeros_like(embd)
    output[np.roll(cycle, -1)] = embd[cycle]  # after cycle[i] comes cycle[i + 1]
    for name, dims in specs:
        if name in ("token_embd.weight", "output.weight"):
            data = embd if name == "token_embd.weight" else output
        elif _is_f32(name):
            data = np.ones(dims, dtype=np.float32) if "norm" in name else _random(rng, dims)
        else:
            data = _random(rng, dims)
        writer.write_tensor_data(data if _is_f32(name) else data.astype(np.float16))
    writer.close()


def quantize_q4_k_m(src: Path, dst: Path) -> None:
    """Quantize ``src`` to Q4_K_M at ``dst`` with llama.cpp, in a child process.

    Raises:
        RuntimeError: llama.cpp failed (its log's tail is in the message).
    """
    done = subprocess.run(
        [sys.executable, __file__, "--quantize", str(src), str(dst)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if done.returncode != 0 or not dst.is_file():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise RuntimeError(f"llama_model_quantize failed ({done.returncode}):\n{tail}")


def _quantize_here(src: str, dst: str) -> int:
    import llama_cpp.llama_cpp as lib

    lib.llama_backend_init()
    params = lib.llama_model_quantize_default_params()
    params.ftype = lib.LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.nthread = os.cpu_count() or 1
    return int(lib.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params)))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--quantize":
        sys.exit(_quantize_here(sys.argv[2], sys.argv[3]))
    print(ensure_model(scaled_scout(), Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CACHE))
