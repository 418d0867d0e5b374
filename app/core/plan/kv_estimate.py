"""What llama.cpp allocates for a context: KV cache cells per layer and compute buffers.

The formulas follow llama.cpp as vendored in llama-cpp-python 0.3.36 and are checked
against its own figures (``tests/engine/test_planner_vs_llamacpp.py``):

* ``n_ctx`` is padded up to a multiple of 256.
* Llama 4 uses chunked attention (8192 tokens) on 3 of every 4 layers: layer ``il`` is
  chunked when ``il % 4 < 3`` (so layers 3, 7, 11, ... attend globally). With
  ``swa_full=False`` a chunked layer keeps ``pad256(min(n_ctx, 8192 + n_ubatch))`` cells,
  a global one ``n_ctx``; with ``swa_full=True`` every layer keeps ``n_ctx``.
* A cell of a layer holds ``n_head_kv * head_dim`` K and V elements of the cache type.
* The compute buffer is the peak of the graph allocator: the attention masks (one per
  cache, f16 with flash attention, f32 without), without flash attention the K*Q scores
  of one layer, and per-token scratch; or, at the end, the logits of the micro-batch.
  Calibrated on the real Scout and Maverick layouts (434.72 MiB for Scout at 131,072
  tokens, ubatch 512) and on the tiny test models; within a few percent everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.gguf.info import GGUFInfo, TensorGroup
from app.core.settings import KVType

CTX_PAD = 256  # llama.cpp pads n_ctx and the SWA cache size to this many cells
LLAMA4_CHUNK = 8192  # fixed by llama.cpp's loader; there is no GGUF key for it

# KV type -> (elements per block, bytes per block)
_KV_BLOCKS = {KVType.F16: (1, 2), KVType.Q8_0: (32, 34), KVType.Q4_0: (32, 18)}
# architecture -> every how many layers one attends globally (the others use a window)
_SWA_PATTERN = {"llama4": 4, "gemma3": 6, "gemma2": 2}


def pad_ctx(n: int) -> int:
    """``n`` rounded up to llama.cpp's cache padding (256 cells)."""
    return -(-n // CTX_PAD) * CTX_PAD


def kv_row_bytes(kv_type: KVType, n_elements: int) -> int:
    """Bytes of ``n_elements`` cache elements of ``kv_type`` (q8_0 is 34/32 bytes each)."""
    block, size = _KV_BLOCKS[KVType(kv_type)]
    return -(-n_elements // block) * size


@dataclass(frozen=True, slots=True)
class ModelShape:
    """The hyperparameters the memory formulas need, read from a GGUF header."""

    arch: str
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: tuple[int, ...]  # per layer
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    n_ff: int
    n_ff_exp: int
    n_experts: int
    n_experts_used: int
    n_shared_experts: int
    has_dense_ffn: bool
    n_swa: int  # window (chunk) of the windowed layers; 0 when every layer is global
    swa_layers: tuple[bool, ...]  # per layer: True when it uses the window
    context_length: int

    @property
    def n_swa_layers(self) -> int:
        """Layers with windowed (chunked) attention."""
        return sum(self.swa_layers)

    def kv_elements(self, layer: int) -> int:
        """K plus V elements one cell of ``layer`` holds."""
        return self.n_head_kv[layer] * (self.head_dim_k + self.head_dim_v)


def _per_layer(value: Any, n_layers: int, default: int) -> tuple[int, ...]:
    if isinstance(value, tuple | list):
        values = tuple(int(v) for v in value)
        return (values + (values[-1:] or (default,)) * n_layers)[:n_layers]
    return (int(value) if value is not None else default,) * n_layers


def _first(value: Any, default: int) -> int:
    if isinstance(value, tuple | list):
        return max((int(v) for v in value), default=default)
    return int(value) if value is not None else default


def model_shape(info: GGUFInfo) -> ModelShape:
    """Read the shape of ``info``'s model (defaults follow llama.cpp's loader)."""
    meta, arch = info.metadata, info.arch

    def get(key: str) -> Any:
        return meta.get(f"{arch}.{key}")

    n_layers = info.n_layers
    n_embd = info.n_embd
    n_head = _first(get("attention.head_count"), 1) or 1
    n_head_kv = _per_layer(get("attention.head_count_kv"), n_layers, n_head)
    head_dim_k = _first(get("attention.key_length"), n_embd // n_head)
    head_dim_v = _first(get("attention.value_length"), n_embd // n_head)
    n_vocab = _vocab_size(info)
    n_ff = _first(get("feed_forward_length"), 4 * n_embd)
    n_ff_exp = _first(get("expert_feed_forward_length"), n_ff)
    window = get("attention.sliding_window")
    pattern = _SWA_PATTERN.get(arch, 0)
    if arch == "llama4":
        n_swa = 0 if window == 0 else LLAMA4_CHUNK
    else:
        n_swa = _first(window, 0) if pattern else 0
    swa = tuple(bool(n_swa) and il % pattern < pattern - 1 for il in range(n_layers))
    return ModelShape(
        arch=arch,
        n_layers=n_layers,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=head_dim_k,
        head_dim_v=head_dim_v,
        n_vocab=n_vocab,
        n_ff=n_ff,
        n_ff_exp=n_ff_exp,
        n_experts=info.n_experts,
        n_experts_used=max(info.n_experts_used, 1) if info.n_experts else 0,
        n_shared_experts=info.n_shared_experts,
        has_dense_ffn=any(t.group is TensorGroup.DENSE_FFN for t in info.tensors),
        n_swa=n_swa,
        swa_layers=swa,
        context_length=info.context_length,
    )


def _vocab_size(info: GGUFInfo) -> int:
    for t in info.tensors:
        if t.name in ("token_embd.weight", "output.weight") and len(t.shape) == 2:
            return int(t.shape[1])
    tokens = info.metadata.get("tokenizer.ggml.tokens")
    return int(info.metadata.get(f"{info.arch}.vocab_size") or (len(tokens) if tokens else 0))


@dataclass(frozen=True, slots=True)
class KVEstimate:
    """The KV cache llama.cpp allocates for one context."""

    n_ctx: int  # as llama.cpp pads it
    global_cells: int
    swa_cells: int  # cells of each windowed layer (== n_ctx with swa_full)
    per_layer: tuple[int, ...]  # bytes per layer (K and V)
    swa_layers: tuple[bool, ...]

    @property
    def total(self) -> int:
        """Bytes over all layers."""
        return sum(self.per_layer)

    @property
    def global_bytes(self) -> int:
        """Bytes of the globally attending layers."""
        return sum(b for b, s in zip(self.per_layer, self.swa_layers, strict=True) if not s)

    @property
    def swa_bytes(self) -> int:
        """Bytes of the windowed (chunked) layers."""
        return self.total - self.global_bytes


def kv_cache(
    shape: ModelShape,
    n_ctx: int,
    type_k: KVType = KVType.F16,
    type_v: KVType = KVType.F16,
    n_ubatch: int = 512,
    swa_full: bool = False,
) -> KVEstimate:
    """The KV cache for ``n_ctx`` tokens, layer by layer, as llama.cpp sizes it."""
    ctx = pad_ctx(max(n_ctx, 1))
    swa_cells = ctx if swa_full or not shape.n_swa else pad_ctx(min(ctx, shape.n_swa + n_ubatch))
    per_layer = []
    for il, windowed in enumerate(shape.swa_layers):
        row = kv_row_bytes(type_k, shape.n_head_kv[il] * shape.head_dim_k) + kv_row_bytes(
            type_v, shape.n_head_kv[il] * shape.head_dim_v
        )
        per_layer.append(row * (swa_cells if windowed else ctx))
    return KVEstimate(ctx, ctx, swa_cells, tuple(per_layer), shape.swa_layers)


def _scratch_floats(shape: ModelShape) -> int:
    """Activations alive at once inside one layer, per token (calibrated, see module doc)."""
    attn = 3 * shape.n_head * shape.head_dim_k + 2 * max(shape.n_head_kv) * shape.head_dim_k
    moe = 0
    if shape.n_experts:
        moe = 3 * shape.n_ff_exp * (shape.n_experts_used + shape.n_shared_experts)
        moe += shape.n_embd // 4
    dense = 3 * shape.n_ff + 4 * shape.n_embd if shape.has_dense_ffn or not moe else 0
    return max(attn, moe, dense)


def _masks(shape: ModelShape, kv: KVEstimate, n_ubatch: int, flash_attn: bool) -> int:
    cells = kv.global_cells if not all(shape.swa_layers) else 0
    if any(shape.swa_layers):
        cells += kv.swa_cells
    return n_ubatch * cells * (2 if flash_attn else 4)


def compute_buffer_bytes(
    shape: ModelShape, kv: KVEstimate, n_ubatch: int = 512, flash_attn: bool = True
) -> int:
    """The compute buffer of the device that runs the whole graph (llama.cpp's figure)."""
    layer = _masks(shape, kv, n_ubatch, flash_attn) + n_ubatch * 4 * _scratch_floats(shape)
    if not flash_attn:  # the K*Q scores of the widest layer
        layer += n_ubatch * kv.global_cells * shape.n_head * 4
    output = n_ubatch * 4 * (shape.n_vocab + 5 * shape.n_embd)
    return max(layer, output)


def host_compute_bytes(
    shape: ModelShape, kv: KVEstimate, n_ubatch: int = 512, flash_attn: bool = True
) -> int:
    """The host-side compute buffer when a GPU runs the graph (inputs, copies, logits row).

    An estimate (not checked against a CUDA build): the masks and token inputs are staged
    in host memory, plus the activations of expert matmuls left on the CPU.
    """
    staged = _masks(shape, kv, n_ubatch, flash_attn) + n_ubatch * 4 * 2 * shape.n_embd
    experts = n_ubatch * 4 * (shape.n_embd + 3 * shape.n_ff_exp * shape.n_experts_used)
    return staged + (experts if shape.n_experts else 0) + shape.n_vocab * 4
