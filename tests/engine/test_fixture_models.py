"""The test model files themselves: llama.cpp loads them, reads them right and runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gguf
import jinja2
import llama_cpp
import numpy as np
import pytest

from tests.fixtures.tiny_llama4 import (
    LLAMA4_CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    special_token_id,
    tiny_vocab,
)


def _load(path: Path, n_ctx: int = 256) -> llama_cpp.Llama:
    return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=2, verbose=False)


def _greedy(llm: llama_cpp.Llama, prompt: bytes, n_tokens: int = 8) -> list[int]:
    """Decode ``n_tokens`` greedily after ``prompt``; fail on non-finite logits."""
    llm.reset()
    tokens = llm.tokenize(prompt, add_bos=False, special=True)
    out: list[int] = []
    for _ in range(n_tokens):
        llm.eval(tokens)
        # not llm.scores: without logits_all=True llama-cpp-python never fills it (it is
        # uninitialised memory); read the last row straight from the context
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(llm.ctx, -1), (llm.n_vocab(),)
        )
        assert np.isfinite(logits).all()
        assert logits.std() > 0
        best = int(np.argmax(logits))
        out.append(best)
        tokens = [best]
    return out


def _tensor_names(path: Path) -> set[str]:
    return {t.name for t in gguf.GGUFReader(path).tensors}


PROMPT = (
    b"<|begin_of_text|><|header_start|>user<|header_end|>\n\nHello!<|eot|>"
    b"<|header_start|>assistant<|header_end|>\n\n"
)


def test_tiny_scout_reads_as_scout(tiny_scout: Path) -> None:
    llm = _load(tiny_scout)
    assert "17Bx16E (Scout)" in llm._model.desc()
    assert llm.metadata["llama4.expert_count"] == "16"
    assert llm.metadata["general.name"] == "Tiny Llama 4 Scout test"
    assert llm.n_vocab() == len(tiny_vocab()[0])
    assert llm.token_bos() == special_token_id("<|begin_of_text|>")
    assert llm.token_eos() == special_token_id("<|eot|>")


@pytest.mark.parametrize("token", SPECIAL_TOKENS)
def test_special_tokens_are_single_tokens(tiny_scout: Path, token: str) -> None:
    llm = _load(tiny_scout)
    assert llm.tokenize(token.encode(), add_bos=False, special=True) == [special_token_id(token)]
    if len(token) <= 32:
        # llama-cpp-python 0.3.36 detokenizes into a 32-byte buffer and silently drops
        # longer pieces, such as the reserved tokens' names
        assert llm.detokenize([special_token_id(token)], special=True) == token.encode()


def test_text_uses_merges(tiny_scout: Path) -> None:
    llm = _load(tiny_scout)
    text = b"Hello! How are you today? The herd walks up the hill."
    tokens = llm.tokenize(text, add_bos=False)
    assert len(tokens) < len(text) / 2
    assert llm.detokenize(tokens) == text


def test_tiny_scout_generates(tiny_scout: Path) -> None:
    llm = _load(tiny_scout)
    assert len(_greedy(llm, PROMPT)) == 8


def test_tiny_scout_chat_completion(tiny_scout: Path) -> None:
    llm = _load(tiny_scout)
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0.0
    )
    assert reply["choices"][0]["message"]["role"] == "assistant"


def test_tiny_maverick_reads_as_maverick(tiny_maverick: Path) -> None:
    llm = _load(tiny_maverick)
    assert "17Bx128E (Maverick)" in llm._model.desc()
    assert llm.metadata["llama4.expert_count"] == "128"
    assert llm.metadata["llama4.interleave_moe_layer_step"] == "2"
    assert len(_greedy(llm, PROMPT)) == 8


def test_tiny_maverick_alternates_dense_and_moe(tiny_maverick: Path) -> None:
    names = _tensor_names(tiny_maverick)
    # llama.cpp: layer il is MoE when (il + 1) % interleave_moe_layer_step == 0
    for il in (0, 2):
        assert f"blk.{il}.ffn_gate.weight" in names
        assert f"blk.{il}.ffn_gate_exps.weight" not in names
    for il in (1, 3):
        assert f"blk.{il}.ffn_gate_exps.weight" in names
        assert f"blk.{il}.ffn_gate_shexp.weight" in names
        assert f"blk.{il}.ffn_gate.weight" not in names


def test_broken_model_loads(tiny_llama4_broken: Path) -> None:
    reader = gguf.GGUFReader(tiny_llama4_broken)
    field = reader.fields["llama4.block_count"]
    assert int(field.parts[field.data[0]][0]) == 2
    llm = _load(tiny_llama4_broken)  # loading is fine; decoding is not (next test)
    assert "17Bx16E" in llm._model.desc()


def test_broken_model_aborts_on_decode(tiny_llama4_broken: Path) -> None:
    code = textwrap.dedent(
        f"""
        import llama_cpp
        llm = llama_cpp.Llama(model_path={str(tiny_llama4_broken)!r}, n_ctx=256,
                              n_threads=2, verbose=False)
        llm.eval(llm.tokenize(b"Hello", add_bos=False))
        print("decoded")
        """
    )
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode != 0
    assert "decoded" not in proc.stdout
    assert "tensor buffer not set" in proc.stderr


def test_chat_template_renders_llama4_format() -> None:
    template = jinja2.Environment().from_string(LLAMA4_CHAT_TEMPLATE)
    messages = [
        {"role": "system", "content": "  Be brief.\n"},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " What is it? "}]},
        {"role": "assistant", "content": "A llama."},
    ]
    text = template.render(
        messages=messages, bos_token="<|begin_of_text|>", add_generation_prompt=True
    )
    assert text == (
        "<|begin_of_text|>"
        "<|header_start|>system<|header_end|>\n\nBe brief.<|eot|>"
        "<|header_start|>user<|header_end|>\n\n<|image|> What is it? <|eot|>"
        "<|header_start|>assistant<|header_end|>\n\nA llama.<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )
    no_prompt = template.render(
        messages=messages[:1], bos_token="<|begin_of_text|>", add_generation_prompt=False
    )
    assert no_prompt == "<|begin_of_text|><|header_start|>system<|header_end|>\n\nBe brief.<|eot|>"


def test_smollm2_generates(smollm2_gguf: Path) -> None:
    llm = _load(smollm2_gguf)
    assert llm.metadata["general.architecture"] == "llama"
    prompt = b"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert len(_greedy(llm, prompt, 4)) == 4


def test_gemma3_generates(gemma3_gguf: Path) -> None:
    llm = _load(gemma3_gguf)
    assert llm.metadata["general.architecture"] == "gemma3"
    prompt = b"<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    assert len(_greedy(llm, prompt, 4)) == 4
