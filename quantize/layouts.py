"""The real Scout and Maverick tensor layouts, as data: what a recipe's size is predicted on.

Meta's published configs: hidden 5120, 48 layers, 40 query and 8 KV heads of 128,
expert FFN 8192, dense FFN 16384, vocabulary 202,048. Scout has 16 routed experts in
every layer; Maverick 128 in every second layer (layer ``il`` is MoE when
``(il + 1) % 2 == 0``), dense FFN layers between; each MoE layer has one shared expert.
Names and ggml shapes (row length first) are those llama.cpp's converter writes; the
source is the BF16 conversion (norms and router F32). Only headers: no weights anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from app.core.gguf.info import GGUFInfo, TensorInfo

Q = GGMLQuantizationType
HEADER_BYTES = 8 << 20  # about what the real header (vocabulary, merges) takes
ALIGNMENT = 32


@dataclass(frozen=True, slots=True)
class Shape:
    """The numbers that fix a Llama 4 text model's tensors."""

    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int  # dense FFN layers
    n_ff_exp: int  # each routed expert and the shared expert
    n_expert: int
    moe_step: int  # every how many layers is MoE
    n_vocab: int
    context_length: int


SCOUT = Shape("Llama-4-Scout-17B-16E-Instruct", 48, 5120, 40, 8, 128, 16384, 8192, 16, 1,
              202_048, 10_485_760)  # fmt: skip
MAVERICK = Shape("Llama-4-Maverick-17B-128E-Instruct", 48, 5120, 40, 8, 128, 16384, 8192,
                 128, 2, 202_048, 1_048_576)  # fmt: skip
SHAPES = {"scout": SCOUT, "maverick": MAVERICK}


def tensor_shapes(s: Shape) -> list[tuple[str, tuple[int, ...]]]:
    """(name, ggml shape) of every tensor, in the converter's order."""
    out: list[tuple[str, tuple[int, ...]]] = [
        ("token_embd.weight", (s.n_embd, s.n_vocab)),
        ("output_norm.weight", (s.n_embd,)),
        ("output.weight", (s.n_embd, s.n_vocab)),
    ]
    n_q, n_kv = s.n_head * s.head_dim, s.n_head_kv * s.head_dim
    for il in range(s.n_layer):
        t: list[tuple[str, tuple[int, ...]]] = [
            ("attn_norm", (s.n_embd,)),
            ("attn_q", (s.n_embd, n_q)),
            ("attn_k", (s.n_embd, n_kv)),
            ("attn_v", (s.n_embd, n_kv)),
            ("attn_output", (n_q, s.n_embd)),
            ("ffn_norm", (s.n_embd,)),
        ]
        if (il + 1) % s.moe_step == 0:
            e, f = s.n_expert, s.n_ff_exp
            t += [
                ("ffn_gate_inp", (s.n_embd, e)),
                ("ffn_gate_exps", (s.n_embd, f, e)),
                ("ffn_up_exps", (s.n_embd, f, e)),
                ("ffn_down_exps", (f, s.n_embd, e)),
                ("ffn_gate_shexp", (s.n_embd, f)),
                ("ffn_up_shexp", (s.n_embd, f)),
                ("ffn_down_shexp", (f, s.n_embd)),
            ]
        else:
            t += [
                ("ffn_gate", (s.n_embd, s.n_ff)),
                ("ffn_up", (s.n_embd, s.n_ff)),
                ("ffn_down", (s.n_ff, s.n_embd)),
            ]
        out += [(f"blk.{il}.{stem}.weight", shape) for stem, shape in t]
    return out


def _n_bytes(shape: tuple[int, ...], qtype: Q) -> int:
    block, size = GGML_QUANT_SIZES[qtype]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


def layout_info(s: Shape) -> GGUFInfo:
    """The header of ``s``'s BF16 GGUF, built in memory (microseconds)."""
    tensors: list[TensorInfo] = []
    offset = 0
    for name, shape in tensor_shapes(s):
        kept = len(shape) == 1 or ".ffn_gate_inp." in name
        qtype = Q.F32 if kept else Q.BF16
        n = 1
        for d in shape:
            n *= d
        n_bytes = _n_bytes(shape, qtype)
        tensors.append(TensorInfo(name, int(qtype), qtype.name, shape, n, n_bytes, offset, 0))
        offset += -(-n_bytes // ALIGNMENT) * ALIGNMENT
    path = Path(f"{s.name}-BF16.gguf")
    a = "llama4"
    metadata: dict[str, object] = {
        "general.architecture": a,
        "general.name": s.name,
        f"{a}.vocab_size": s.n_vocab,
        f"{a}.context_length": s.context_length,
        f"{a}.embedding_length": s.n_embd,
        f"{a}.block_count": s.n_layer,
        f"{a}.feed_forward_length": s.n_ff,
        f"{a}.expert_feed_forward_length": s.n_ff_exp,
        f"{a}.attention.head_count": s.n_head,
        f"{a}.attention.head_count_kv": s.n_head_kv,
        f"{a}.attention.key_length": s.head_dim,
        f"{a}.attention.value_length": s.head_dim,
        f"{a}.rope.dimension_count": s.head_dim,
        f"{a}.expert_count": s.n_expert,
        f"{a}.expert_used_count": 1,
        f"{a}.expert_shared_count": 1,
        f"{a}.interleave_moe_layer_step": s.moe_step,
    }
    return GGUFInfo(
        path=path,
        parts=(path,),
        version=3,
        metadata=metadata,
        tensors=tuple(tensors),
        file_size=HEADER_BYTES + offset,
        data_offsets=(HEADER_BYTES,),
        alignment=ALIGNMENT,
    )


def family_info(family: str) -> GGUFInfo:
    """``scout`` or ``maverick``'s BF16 layout."""
    return layout_info(SHAPES[family])


def scout_info() -> GGUFInfo:
    """Llama 4 Scout (17B active, 16 experts), BF16 source."""
    return layout_info(SCOUT)


def maverick_info() -> GGUFInfo:
    """Llama 4 Maverick (17B active, 128 experts), BF16 source."""
    return layout_info(MAVERICK)


def family_of(info: GGUFInfo) -> str:
    """``scout``, ``maverick`` or ``any``: what a model's header says it is."""
    if not info.is_llama4:
        return "any"
    return {16: "scout", 128: "maverick"}.get(info.n_experts, "any")
