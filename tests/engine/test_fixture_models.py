"""The test model files themselves: llama.cpp loads them, reads them right and runs them.

llama.cpp runs in child processes (:mod:`tests.engine.child`), one per model, loading as the
engine does on this machine; the tests check the facts a child brings back. A crash there
fails the tests that needed it and names the signal; the run goes on.
"""

from __future__ import annotations

import ctypes
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import jinja2
import pytest

from app.core.engine.engine_config import EngineConfig
from tests.engine.child import (
    ChildCrashed,
    Lazy,
    herd_llama,
    llama_kwargs,
    plain_llama_params,
    run_in_child,
)
from tests.fixtures.tiny_llama4 import (
    LLAMA4_CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    special_token_id,
    tiny_vocab,
)

PROMPT = (
    b"<|begin_of_text|><|header_start|>user<|header_end|>\n\nHello!<|eot|>"
    b"<|header_start|>assistant<|header_end|>\n\n"
)
MERGES_TEXT = b"Hello! How are you today? The herd walks up the hill."


@dataclass(frozen=True)
class Step:
    """One greedy decoding step: the token picked and what its logits looked like."""

    token: int
    finite: bool  # every logit finite
    spread: float  # the logits' standard deviation


@dataclass(frozen=True)
class Facts:
    """What llama.cpp made of one model file (read in a child)."""

    desc: str
    metadata: dict[str, str]
    n_vocab: int
    bos: int
    eos: int
    steps: list[Step] = field(default_factory=list)  # greedy decoding after a prompt
    # tiny Scout only:
    special: dict[str, tuple[list[int], bytes]] = field(default_factory=dict)
    merges: tuple[list[int], bytes] = ([], b"")  # tokens of MERGES_TEXT, and back
    chat_role: str = ""  # create_chat_completion's reply role, on the GGUF's template


# -- in the child ------------------------------------------------------------------------
def _load(config: EngineConfig, path: Path) -> Any:
    return herd_llama(config, path, n_ctx=256, n_threads=2, verbose=False)


def _greedy(llm: Any, prompt: bytes, n_tokens: int) -> list[Step]:
    """Decode ``n_tokens`` greedily after ``prompt``."""
    import llama_cpp
    import numpy as np

    llm.reset()
    tokens = llm.tokenize(prompt, add_bos=False, special=True)
    out: list[Step] = []
    for _ in range(n_tokens):
        llm.eval(tokens)
        # not llm.scores: without logits_all=True llama-cpp-python never fills it (it is
        # uninitialised memory); read the last row straight from the context
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(llm.ctx, -1), (llm.n_vocab(),)
        )
        best = int(np.argmax(logits))
        out.append(Step(best, bool(np.isfinite(logits).all()), float(logits.std())))
        tokens = [best]
    return out


def _read(llm: Any) -> Facts:
    return Facts(
        desc=llm._model.desc(),
        metadata=dict(llm.metadata),
        n_vocab=llm.n_vocab(),
        bos=llm.token_bos(),
        eos=llm.token_eos(),
    )


def _facts(path: Path, config: EngineConfig, prompt: bytes = b"", n_tokens: int = 0) -> Facts:
    llm = _load(config, path)
    try:
        facts = _read(llm)
        steps = _greedy(llm, prompt, n_tokens) if n_tokens else []
    finally:
        llm.close()
    return dataclasses.replace(facts, steps=steps)


def _scout_facts(path: Path, config: EngineConfig) -> Facts:
    """Everything the tiny Scout tests check, from one child."""
    import llama_cpp

    llm = _load(config, path)
    try:
        facts = _read(llm)
        special = {
            token: (
                llm.tokenize(token.encode(), add_bos=False, special=True),
                llm.detokenize([special_token_id(token)], special=True),
            )
            for token in SPECIAL_TOKENS
        }
        merged = llm.tokenize(MERGES_TEXT, add_bos=False)
        merges = (merged, llm.detokenize(merged))
        steps = _greedy(llm, PROMPT, 8)
    finally:
        llm.close()
    # llama-cpp-python's own chat handler, built from the GGUF's template (which HerdLlama
    # leaves out): a plain Llama, loaded with this machine's configuration
    with plain_llama_params(config):
        plain = llama_cpp.Llama(**llama_kwargs(config, path, n_ctx=256, n_threads=2, verbose=False))
    try:
        reply: Any = plain.create_chat_completion(
            messages=[{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0.0
        )
    finally:
        plain.close()
    role = reply["choices"][0]["message"]["role"]
    return dataclasses.replace(facts, steps=steps, special=special, merges=merges, chat_role=role)


def _tiny_facts(
    scout: Path, maverick: Path, broken: Path, config: EngineConfig
) -> dict[str, Facts]:
    """The three tiny Llama 4 files, read in one child (each spawn costs half a second)."""
    return {
        "scout": _scout_facts(scout, config),
        "maverick": _facts(maverick, config, PROMPT, 8),
        "broken": _facts(broken, config),  # loading is fine; decoding is not
    }


def _decode_broken(path: Path, config: EngineConfig) -> str:
    llm = _load(config, path)
    llm.eval(llm.tokenize(b"Hello", add_bos=False))
    return "decoded"


# -- the checks --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(  # one child reads all three tiny files, for every test here that needs them
    tiny_scout: Path, tiny_maverick: Path, tiny_llama4_broken: Path, engine_config: EngineConfig
) -> Lazy[dict[str, Facts]]:
    return Lazy(_tiny_facts, tiny_scout, tiny_maverick, tiny_llama4_broken, engine_config)


def _assert_generated(steps: list[Step], n_tokens: int) -> None:
    assert len(steps) == n_tokens
    assert all(step.finite for step in steps), steps
    assert all(step.spread > 0 for step in steps), steps


def _tensor_names(path: Path) -> set[str]:
    return {t.name for t in gguf.GGUFReader(path).tensors}


def test_tiny_scout_reads_as_scout(tiny: Lazy[dict[str, Facts]]) -> None:
    facts = tiny()["scout"]
    assert "17Bx16E (Scout)" in facts.desc
    assert facts.metadata["llama4.expert_count"] == "16"
    assert facts.metadata["general.name"] == "Tiny Llama 4 Scout test"
    assert facts.n_vocab == len(tiny_vocab()[0])
    assert facts.bos == special_token_id("<|begin_of_text|>")
    assert facts.eos == special_token_id("<|eot|>")


@pytest.mark.parametrize("token", SPECIAL_TOKENS)
def test_special_tokens_are_single_tokens(tiny: Lazy[dict[str, Facts]], token: str) -> None:
    tokens, text = tiny()["scout"].special[token]
    assert tokens == [special_token_id(token)]
    if len(token) <= 32:
        # llama-cpp-python 0.3.36 detokenizes into a 32-byte buffer and silently drops
        # longer pieces, such as the reserved tokens' names
        assert text == token.encode()


def test_text_uses_merges(tiny: Lazy[dict[str, Facts]]) -> None:
    tokens, text = tiny()["scout"].merges
    assert len(tokens) < len(MERGES_TEXT) / 2
    assert text == MERGES_TEXT


def test_tiny_scout_generates(tiny: Lazy[dict[str, Facts]]) -> None:
    _assert_generated(tiny()["scout"].steps, 8)


def test_tiny_scout_chat_completion(tiny: Lazy[dict[str, Facts]]) -> None:
    assert tiny()["scout"].chat_role == "assistant"


def test_tiny_maverick_reads_as_maverick(tiny: Lazy[dict[str, Facts]]) -> None:
    facts = tiny()["maverick"]
    assert "17Bx128E (Maverick)" in facts.desc
    assert facts.metadata["llama4.expert_count"] == "128"
    assert facts.metadata["llama4.interleave_moe_layer_step"] == "2"
    _assert_generated(facts.steps, 8)


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


def test_broken_model_loads(tiny_llama4_broken: Path, tiny: Lazy[dict[str, Facts]]) -> None:
    reader = gguf.GGUFReader(tiny_llama4_broken)
    field = reader.fields["llama4.block_count"]
    assert int(field.parts[field.data[0]][0]) == 2
    assert "17Bx16E" in tiny()["broken"].desc  # loading is fine; decoding is not (next test)


def test_broken_model_aborts_on_decode(
    tiny_llama4_broken: Path, engine_config: EngineConfig
) -> None:
    with pytest.raises(ChildCrashed) as crash:  # no answer: it never said "decoded"
        run_in_child(_decode_broken, tiny_llama4_broken, engine_config, timeout=60)
    assert crash.value.exitcode != 0
    assert "tensor buffer not set" in crash.value.stderr


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


def test_smollm2_generates(smollm2_gguf: Path, engine_config: EngineConfig) -> None:
    prompt = b"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    facts = run_in_child(_facts, smollm2_gguf, engine_config, prompt, 4)
    assert facts.metadata["general.architecture"] == "llama"
    _assert_generated(facts.steps, 4)


def test_gemma3_generates(gemma3_gguf: Path, engine_config: EngineConfig) -> None:
    prompt = b"<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    facts = run_in_child(_facts, gemma3_gguf, engine_config, prompt, 4)
    assert facts.metadata["general.architecture"] == "gemma3"
    _assert_generated(facts.steps, 4)


# -- the child helper itself: a native crash fails one test, named, and the run goes on ----
def _read_address_zero() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file for a deliberate crash
    ctypes.string_at(0)  # a real segmentation fault, in native code


def _fail_an_assertion(value: int) -> None:
    assert value == 3, "checked in the child"


@pytest.mark.skipif(sys.platform == "win32", reason="no signals there: a crash is an exit code")
def test_a_native_crash_fails_the_test_and_names_the_signal() -> None:
    with pytest.raises(ChildCrashed, match="crashed in the child: SIGSEGV") as crash:
        run_in_child(_read_address_zero, timeout=60)
    assert crash.value.signal == "SIGSEGV"


def test_an_exception_in_the_child_comes_back_with_its_traceback() -> None:
    with pytest.raises(AssertionError, match="checked in the child") as failed:
        run_in_child(_fail_an_assertion, 2)
    notes = "".join(getattr(failed.value, "__notes__", []))
    assert "_fail_an_assertion" in notes and "assert value == 3" in notes
