"""llama.cpp's importance-matrix files, both formats, read as llama-quantize reads them.

The files are written here in llama-imatrix's layouts (``tools/imatrix/imatrix.cpp``): the
GGUF one (``<name>.in_sum2`` and ``<name>.counts`` with the ``imatrix.*`` keys) and the
legacy ``.dat``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from quantize.imatrix import ImatrixError, read_imatrix
from quantize.job import check_imatrix
from quantize.layouts import Shape, layout_info
from quantize.predict import predict
from quantize.recipe import recipe_named
from tests.fixtures.tiny_llama4_f32 import write_imatrix_dat, write_imatrix_gguf

ENTRIES = {
    "blk.0.ffn_up_exps.weight": np.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]]),
    "blk.0.attn_q.weight": np.array([[2.0, 4.0, 6.0, 8.0]]),
}


@pytest.mark.parametrize("fmt", ["gguf", "dat"])
def test_both_formats_give_the_mean_squared_activations(tmp_path: Path, fmt: str) -> None:
    write = write_imatrix_gguf if fmt == "gguf" else write_imatrix_dat
    im = read_imatrix(write(tmp_path / f"im.{fmt}", ENTRIES))
    assert im.format == ("gguf" if fmt == "gguf" else "legacy")
    assert set(im.entries) == set(ENTRIES)
    for name, values in ENTRIES.items():
        got = im.entries[name]
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, values.reshape(-1), rtol=1e-6)
    assert im.datasets == ("tiny.txt",) and im.chunk_count == 1


def test_an_expert_that_saw_no_tokens_gets_ones(tmp_path: Path) -> None:
    path = tmp_path / "im.gguf"
    w = GGUFWriter(path, "")
    w.add_array("imatrix.datasets", ["x"])
    w.add_uint32("imatrix.chunk_count", 1)
    w.add_uint32("imatrix.chunk_size", 512)
    w.add_tensor("w.in_sum2", np.array([[4.0, 8.0], [9.0, 9.0]], dtype=np.float32))
    w.add_tensor("w.counts", np.array([[2.0], [0.0]], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    np.testing.assert_allclose(read_imatrix(path).entries["w"], [2.0, 4.0, 1.0, 1.0])


def test_broken_files_are_refused_with_words(tmp_path: Path) -> None:
    dat = write_imatrix_dat(tmp_path / "im.dat", ENTRIES)
    cut = tmp_path / "cut.dat"
    cut.write_bytes(dat.read_bytes()[:40])
    with pytest.raises(ImatrixError, match="cut off|ends early"):
        read_imatrix(cut)
    empty = tmp_path / "empty.dat"
    empty.write_bytes(b"\0\0\0\0")
    with pytest.raises(ImatrixError, match="no entries"):
        read_imatrix(empty)
    with pytest.raises(ImatrixError, match="Cannot read"):
        read_imatrix(tmp_path / "missing.dat")
    bare = tmp_path / "bare.gguf"  # no imatrix.* keys: llama-quantize refuses it too
    w = GGUFWriter(bare, "")
    w.add_tensor("w.in_sum2", np.ones((1, 4), dtype=np.float32))
    w.add_tensor("w.counts", np.ones((1, 1), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ImatrixError, match="imatrix.datasets"):
        read_imatrix(bare)


TINY = Shape("tiny", 2, 256, 4, 2, 64, 256, 256, 4, 1, 300, 4096)


def _full(info_recipe: str = "maverick-mac-128gb") -> tuple[dict[str, np.ndarray], object]:
    pred = predict(layout_info(TINY), recipe_named(info_recipe))
    entries = {}
    for t in pred.tensors:
        if t.pattern != "kept" and t.name != "token_embd.weight":
            n_mat = t.shape[2] if len(t.shape) > 2 else 1
            entries[t.name] = np.ones((n_mat, t.shape[0]), dtype=np.float32)
    return entries, pred


def test_a_missing_entry_for_a_very_low_bit_tensor_is_named(tmp_path: Path) -> None:
    entries, pred = _full()
    im = read_imatrix(write_imatrix_gguf(tmp_path / "full.gguf", entries))
    assert check_imatrix(im, pred) == ()  # type: ignore[arg-type]
    del entries["blk.1.ffn_gate_exps.weight"]
    im = read_imatrix(write_imatrix_gguf(tmp_path / "gap.gguf", entries))
    with pytest.raises(ImatrixError) as err:
        check_imatrix(im, pred)  # type: ignore[arg-type]
    assert "blk.1.ffn_gate_exps.weight" in err.value.user_message
    assert "IQ1_M" in err.value.user_message


def test_a_missing_entry_elsewhere_is_a_warning_and_a_wrong_size_an_error(tmp_path: Path) -> None:
    entries, pred = _full()
    del entries["blk.0.attn_q.weight"]  # Q6_K: works without, a little worse
    im = read_imatrix(write_imatrix_dat(tmp_path / "a.dat", entries))
    assert check_imatrix(im, pred) == (  # type: ignore[arg-type]
        "the importance matrix has no entry for blk.0.attn_q.weight",
    )
    entries["blk.0.attn_k.weight"] = np.ones((1, 128), dtype=np.float32)
    im = dataclasses.replace(im, entries={k: v.reshape(-1) for k, v in entries.items()})
    with pytest.raises(ImatrixError, match="has 128 values; the tensor needs 256") as err:
        check_imatrix(im, pred)  # type: ignore[arg-type]
    assert "another model" in err.value.hint
