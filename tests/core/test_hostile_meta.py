"""Metadata of the wrong type (a number stored as a string, float, boolean or array).

Each bad file is a real tiny Llama 4 with one key rewritten (GGUFReader -> GGUFWriter); every
caller (``herd info``, ``herd plan``, ``herd chat``) must answer in one line with exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gguf import GGUFValueType

from app.core.errors import HerdError, ModelFileError
from app.core.gguf.info import BadMetadataError, check_metadata, read_gguf
from app.core.hardware.spec import hardware_from_spec
from app.core.plan.kv_estimate import model_shape
from app.core.plan.planner import make_plan
from tests.fixtures.gguf_rewrite import Value, rewrite_gguf

ROOT = Path(__file__).resolve().parents[2]

T = GGUFValueType
FIVE = "bad.gguf: llama4.block_count should be an integer but is a string ('five')"


def rewrite(src: Path, dst: Path, changes: dict[str, Value]) -> Path:
    """Copy ``src`` (every key and tensor) to ``dst`` with ``changes`` to its metadata."""
    return rewrite_gguf(src, dst, changes=changes)


@pytest.fixture
def five(tmp_path: Path, tiny_scout: Path) -> Path:
    """A tiny Scout whose ``llama4.block_count`` is the string "five"."""
    return rewrite(tiny_scout, tmp_path / "bad.gguf", {"llama4.block_count": ("five", T.STRING)})


BAD: list[tuple[str, Value, str]] = [
    ("llama4.block_count", ("five", T.STRING), "should be an integer but is a string ('five')"),
    ("llama4.context_length", (16384.0, T.FLOAT32), "should be an integer but is a float"),
    ("llama4.embedding_length", (True, T.BOOL), "should be an integer but is a boolean (true)"),
    ("llama4.expert_count", ([16, 16], T.ARRAY, T.UINT32), "but is an array of 2 integers"),
    ("llama4.expert_used_count", (-1, T.INT32), "should be 0 or more but is an integer (-1)"),
    ("llama4.expert_feed_forward_length", ("64", T.STRING), "should be an integer"),
    ("llama4.interleave_moe_layer_step", (1.5, T.FLOAT64), "should be an integer"),
    ("llama4.vocab_size", ("big", T.STRING), "should be an integer"),
    ("llama4.attention.head_count", ("4", T.STRING), "array of integers (one per layer)"),
    ("llama4.attention.head_count_kv", ([2.0] * 4, T.ARRAY, T.FLOAT32), "array of 4 floats"),
    ("llama4.attention.head_count_kv", ([2, 2], T.ARRAY, T.UINT32), "has 2 values, but the model"),
    ("llama4.feed_forward_length", (["128"] * 4, T.ARRAY, T.STRING), "array of 4 strings"),
    ("llama4.attention.key_length", (-16, T.INT64), "should be 0 or more"),
    ("llama4.rope.dimension_count", ("16", T.STRING), "should be an integer"),
    ("llama4.rope.freq_base", ("high", T.STRING), "should be a number but is a string ('high')"),
    ("llama4.attention.layer_norm_rms_epsilon", ([1e-5], T.ARRAY, T.FLOAT32), "be a number"),
    ("llama4.block_count", (2**32 - 1, T.UINT32), "is 4294967295, more than the 512 layers"),
    ("tokenizer.ggml.tokens", ("abc", T.STRING), "tokens should be an array of strings"),
    ("tokenizer.ggml.tokens", ([1, 2], T.ARRAY, T.INT32), "but is an array of 2 integers"),
    ("split.count", ("two", T.STRING), "split.count should be an integer but is a string"),
    ("general.architecture", (4, T.UINT32), "should be a string but is an integer (4)"),
]


@pytest.mark.parametrize(("key", "value", "words"), BAD, ids=[f"{k}-{w}" for k, _, w in BAD])
def test_wrong_type_is_one_clear_error(
    tmp_path: Path, tiny_scout: Path, key: str, value: Value, words: str
) -> None:
    bad = rewrite(tiny_scout, tmp_path / "bad.gguf", {key: value})
    with pytest.raises(BadMetadataError) as err:
        read_gguf(bad)
    assert isinstance(err.value, ModelFileError) and isinstance(err.value, HerdError)
    assert err.value.user_message.startswith(f"bad.gguf: {key}")
    assert words in err.value.user_message
    assert err.value.hint and "\n" not in err.value.one_line()


def test_an_empty_array_where_a_count_goes() -> None:  # GGUFWriter cannot write one
    meta = {"general.architecture": "llama4", "llama4.attention.head_count_kv": ()}
    with pytest.raises(BadMetadataError, match="head_count_kv should be .* but is an empty array"):
        check_metadata(Path("empty.gguf"), meta)


def test_the_types_writers_use_still_read(tmp_path: Path, tiny_scout: Path) -> None:
    good = rewrite(
        tiny_scout,
        tmp_path / "good.gguf",
        {
            "llama4.attention.head_count_kv": ([2, 1, 2, 1], T.ARRAY, T.INT32),  # per layer
            "llama4.context_length": (16384, T.UINT64),
            "llama4.rope.freq_base": (500000, T.UINT32),  # a number, even if not a float
        },
    )
    info = read_gguf(good)
    assert info.n_layers == 4 and info.context_length == 16384
    assert model_shape(info).n_head_kv == (2, 1, 2, 1)
    make_plan(info, hardware_from_spec([], 16 << 30, False))


def herd(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERD_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [["info"], ["info", "--json"], ["plan", "--ram", "64GB"], ["chat", "--prompt", "hi"]],
    ids=["info", "info-json", "plan", "chat"],
)
def test_every_command_says_it_in_one_line(tmp_path: Path, five: Path, argv: list[str]) -> None:
    r = herd(tmp_path / "home", argv[0], str(five), *argv[1:])
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"herd: {FIVE}"), r.stderr


def test_chat_refuses_before_starting_an_engine(
    tmp_path: Path, five: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from app.__main__ import main
    from app.core.engine import client

    def no_engine(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an engine was started for a file that cannot be read")

    monkeypatch.setenv("HERD_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(client.EngineClient, "__init__", no_engine)
    assert main(["chat", str(five), "--prompt", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"herd: {FIVE}") and err.count("\n") == 1
