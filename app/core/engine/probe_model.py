"""The engine self-check's test model: a tiny random Llama 4 MoE, written at run time.

It exercises the kernels a real Scout or Maverick load uses on this machine: every layer
MoE (16 routed experts, one shared), routed experts in Q4_0 and every other matrix in
Q8_0, the two types llama.cpp repacks into its CPU "extra buffer types" (AMX, AVX2/AVX512
and NEON interleaved layouts). Dimensions are multiples of 256 so the repacking paths
accept the tensors. Written with the ``gguf`` package; no llama.cpp here.
"""

from __future__ import annotations

import os
from pathlib import Path

import gguf
import numpy as np

PROBE_VERSION = 1  # bump when the file changes: the cached copy is then rewritten
N_EMBD = 256
N_HEAD, N_HEAD_KV = 4, 2
N_FF_EXP = 256
N_EXPERTS = 16
N_LAYERS = 4  # every 4th layer attends globally; fewer and llama.cpp aborts
N_VOCAB = 512
_Q = gguf.GGMLQuantizationType


def probe_model_path(folder: Path) -> Path:
    """The probe model in ``folder``, written there first if missing (atomically)."""
    path = folder / f"herd-engine-probe-v{PROBE_VERSION}.gguf"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        write_probe_model(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _vocab() -> tuple[list[str], list[int]]:
    # GPT-2's printable byte alphabet (enough for llama.cpp's BPE loader), then control tokens
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    tokens = [chr(c) for c in printable]
    tokens += [chr(256 + i) for i in range(256 - len(printable))]
    tokens += ["\u0120t"]  # the one merge's result
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot|>"]
    tokens += specials
    tokens += [f"<|reserved_{i}|>" for i in range(N_VOCAB - len(tokens))]
    normal, control = int(gguf.TokenType.NORMAL), int(gguf.TokenType.CONTROL)
    types = [normal] * 257 + [control] * (len(tokens) - 257)
    return tokens, types


def write_probe_model(path: Path, *, seed: int = 7) -> None:
    """Write the probe model to ``path``."""
    rng = np.random.default_rng(seed)
    tokens, types = _vocab()
    head_dim = N_EMBD // N_HEAD
    writer = gguf.GGUFWriter(str(path), "llama4")
    writer.add_name("Herd engine probe")
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q8_0))
    writer.add_vocab_size(len(tokens))
    writer.add_context_length(4096)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(N_FF_EXP * 2)
    writer.add_expert_feed_forward_length(N_FF_EXP)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(500000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_expert_count(N_EXPERTS)
    writer.add_expert_used_count(1)
    writer.add_interleave_moe_layer_step(1)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("llama4")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(["\u0120 t"])
    writer.add_bos_token_id(tokens.index("<|begin_of_text|>"))
    writer.add_eos_token_id(tokens.index("<|eot|>"))
    writer.add_add_bos_token(False)

    def matrix(
        shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType
    ) -> tuple[np.ndarray, gguf.GGMLQuantizationType]:
        data = rng.normal(0.0, 0.05, size=shape).astype(np.float32)
        return gguf.quants.quantize(data, qtype), qtype

    def add(name: str, packed: tuple[np.ndarray, gguf.GGMLQuantizationType]) -> None:
        writer.add_tensor(name, packed[0], raw_dtype=packed[1])

    def norm(name: str, n: int) -> None:
        writer.add_tensor(name, np.ones(n, dtype=np.float32))

    n_q, n_kv = N_HEAD * head_dim, N_HEAD_KV * head_dim
    add("token_embd.weight", matrix((len(tokens), N_EMBD), _Q.Q8_0))
    norm("output_norm.weight", N_EMBD)
    add("output.weight", matrix((len(tokens), N_EMBD), _Q.Q8_0))
    for il in range(N_LAYERS):
        blk = f"blk.{il}"
        norm(f"{blk}.attn_norm.weight", N_EMBD)
        add(f"{blk}.attn_q.weight", matrix((n_q, N_EMBD), _Q.Q8_0))
        add(f"{blk}.attn_k.weight", matrix((n_kv, N_EMBD), _Q.Q8_0))
        add(f"{blk}.attn_v.weight", matrix((n_kv, N_EMBD), _Q.Q8_0))
        add(f"{blk}.attn_output.weight", matrix((N_EMBD, n_q), _Q.Q8_0))
        norm(f"{blk}.ffn_norm.weight", N_EMBD)
        writer.add_tensor(
            f"{blk}.ffn_gate_inp.weight",
            rng.normal(0.0, 0.05, size=(N_EXPERTS, N_EMBD)).astype(np.float32),
        )
        for kind in ("gate", "up"):
            add(f"{blk}.ffn_{kind}_exps.weight", matrix((N_EXPERTS, N_FF_EXP, N_EMBD), _Q.Q4_0))
            add(f"{blk}.ffn_{kind}_shexp.weight", matrix((N_FF_EXP, N_EMBD), _Q.Q8_0))
        add(f"{blk}.ffn_down_exps.weight", matrix((N_EXPERTS, N_EMBD, N_FF_EXP), _Q.Q4_0))
        add(f"{blk}.ffn_down_shexp.weight", matrix((N_EMBD, N_FF_EXP), _Q.Q8_0))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
