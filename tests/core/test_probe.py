"""The probe's pieces without an engine: needles, filler, lengths, grid, words, store."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.core.chat.messages import ChatMessage
from app.core.errors import HerdError
from app.core.probe.haystack import filler
from app.core.probe.needles import Needle, NeedleMaker
from app.core.probe.prompts import FillerPool, build_prompt
from app.core.probe.result import Cell, ProbeResult, default_lengths, fit_lengths
from app.core.probe.store import ProbeStore
from app.core.probe.words import grid_text, recall_words, tokens_label
from app.probe_cli import parse_depths, parse_tokens


def _words(messages: Sequence[ChatMessage]) -> int:
    """A stand-in tokenizer for the mechanics: one token per word, plus a header's 5."""
    return 5 + sum(len(m.content.split()) for m in messages)


def test_needles_differ_in_key_and_number() -> None:
    maker = NeedleMaker(1)
    needles = [maker.next() for _ in range(300)]
    assert len({n.key for n in needles}) == 300
    assert len({n.value for n in needles}) == 300
    assert all(re.fullmatch(r"[1-9]\d{6}", n.value) for n in needles)
    again = NeedleMaker(1)
    assert [again.next() for _ in range(5)] == needles[:5]  # the same seed, the same needles


@pytest.mark.parametrize(
    ("answer", "found"),
    [
        ("4829173", True),
        ("The secret number is 4829173.", True),
        ("4,829,173", True),
        ("4 829 173", True),
        ("48291730", False),
        ("14829173", False),
        ("4829174", False),
        ("", False),
    ],
)
def test_an_answer_counts_when_it_holds_the_exact_number(answer: str, found: bool) -> None:
    assert Needle("cobalt otter", "4829173").found_in(answer) is found


def test_filler_is_varied_repeatable_and_has_no_digits() -> None:
    text = filler(3, 2000)
    assert text == filler(3, 2000)
    assert text[:50] != filler(4, 50)
    assert not any(ch.isdigit() for s in text for ch in s)
    assert len(set(text)) > 1900  # hardly a sentence twice
    assert all(a != b for a, b in zip(text, text[1:], strict=False))


def test_a_prompt_lands_just_under_its_length_with_the_needle_at_its_depth() -> None:
    pool = FillerPool(0)
    for target in (300, 1000, 4000):
        for depth in (0.0, 0.3, 1.0):
            needle = Needle("teal heron", "5551234")
            prompt = build_prompt(_words, pool, target, depth, needle)
            assert target - 40 <= prompt.n_tokens <= target
            assert prompt.n_tokens == _words(prompt.messages)
            assert abs(prompt.needle_at - depth) <= 0.6 / max(prompt.n_sentences, 1)
            text = prompt.messages[-1].content
            assert text.count("5551234") == 1  # in the needle; not in the question
            assert text.endswith(needle.question)


def test_too_short_a_length_is_refused() -> None:
    with pytest.raises(HerdError, match="too short"):
        build_prompt(_words, FillerPool(0), 20, 0.5, Needle("teal heron", "5551234"))


def test_lengths_that_do_not_fit_are_skipped_or_shortened() -> None:
    kept, notes = fit_lengths((1024, 4096, 8192, 16384), 8192, 24)
    assert kept == [(1024, 1024), (4096, 4096), (8192, 8167)]
    assert len(notes) == 2
    assert "16,384 tokens do not fit" in notes[1]
    assert default_lengths(8192) == (1024, 2048, 4096, 8192)
    assert default_lengths(512) == (256, 512)


def _result(path: str = "/m.gguf", *, complete: bool = True) -> ProbeResult:
    cells = []
    for length in (1024, 2048):
        for depth in (0.0, 0.5, 1.0):
            for trial in range(2):
                correct = not (length == 2048 and depth == 0.5 and trial == 0)
                cells.append(
                    Cell(length, depth, trial, "k", "1234567", "x", correct, length - 10, depth, 1)
                )
    if not complete:
        cells = cells[:7]
    return ProbeResult(
        model="Tiny",
        path=path,
        n_ctx=2048,
        kv_type="q8_0",
        plan="all on the CPU",
        lengths=(1024, 2048),
        depths=(0.0, 0.5, 1.0),
        trials=2,
        cells=tuple(cells),
        seconds=12.3,
        complete=complete,
        notes=("2,048 is measured at 2,023 tokens, to leave room for the answer.",),
        prompt_tok_s=900.0,
    )


def test_the_grid_is_depth_by_length() -> None:
    result = _result()
    assert result.grid() == [[1.0, 1.0], [1.0, 0.5], [1.0, 1.0]]
    assert result.length_accuracy(2048) == pytest.approx(5 / 6)
    assert result.tokens(1024) == 1014
    partial = _result(complete=False)
    assert partial.grid()[1] == [1.0, None]


def test_the_json_contract() -> None:
    data = json.loads(json.dumps(_result().to_json()))
    for key in ("grid", "lengths", "depths", "trials", "model", "ctx", "kv_type", "seconds"):
        assert key in data
    assert data["grid"] == [[1.0, 1.0], [1.0, 0.5], [1.0, 1.0]]
    assert data["ctx"] == 2048 and data["kv_type"] == "q8_0" and data["trials"] == 2
    assert len(data["cells"]) == 12 and data["complete"] is True


def test_the_grid_in_words() -> None:
    text = grid_text(_result())
    lines = text.splitlines()
    assert (
        lines[0] == "Recall of Tiny at 2,048 tokens of context, q8_0 KV cache (2 trials per cell)"
    )
    header = lines.index(next(ln for ln in lines if ln.startswith("depth")))
    assert lines[header].split() == ["depth", "1K", "2K"]
    assert lines[header + 2].split() == ["50%", "100%", "50%"]
    assert "Overall 92% of 12 needles" in text
    partial = grid_text(_result(complete=False))
    assert "Stopped early" in partial
    assert partial.splitlines()[header + 2].split() == ["50%", "100%", "-"]


def test_token_labels() -> None:
    assert [tokens_label(n) for n in (512, 1024, 8192, 131072, 10_485_760)] == [
        "512", "1K", "8K", "128K", "10M",
    ]  # fmt: skip


def test_the_store_keeps_results_per_model_plan_context_and_kv(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(60))
    file = tmp_path / "data" / "probes.json"
    store = ProbeStore(file)
    assert store.records(model) == []
    store.add(_result(str(model)))
    again = ProbeStore(file)
    [record] = again.records(model)
    assert (record.n_ctx, record.kv_type, record.plan) == (2048, "q8_0", "all on the CPU")
    assert record.accuracy == (1.0, pytest.approx(5 / 6))
    again.add(_result(str(model)))  # the same plan, context and KV: replaced
    assert len(ProbeStore(file).records(model)) == 1
    assert recall_words(again.records(model), "q8_0") == "Recall checked at 2K: 92%"
    assert recall_words(again.records(model), "f16") == ""
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # another file now
    assert ProbeStore(file).records(model) == []
    assert not list(file.parent.glob("*.tmp"))


def test_recall_words_name_each_context() -> None:
    from app.core.probe.store import ProbeRecord

    def rec(n_ctx: int, overall: float, when: str, kv: str = "f16") -> ProbeRecord:
        return ProbeRecord("p", n_ctx, kv, (n_ctx,), (overall,), overall, when)

    records = [rec(131072, 0.8, "b"), rec(32768, 1.0, "a"), rec(131072, 0.5, "a")]
    assert recall_words(records, "f16") == "Recall checked at 32K: 100%; at 128K: 80%"


def test_a_broken_store_holds_nothing(tmp_path: Path) -> None:
    file = tmp_path / "probes.json"
    file.write_text("{not json", encoding="utf-8")
    assert ProbeStore(file).records(tmp_path) == []
    file.write_text('{"models": {"x": [{"plan": 1}], "y": 3}}', encoding="utf-8")
    assert ProbeStore(file).records(tmp_path) == []


def test_command_line_lengths_and_depths() -> None:
    assert [parse_tokens(t) for t in ("512", "1K", "1.5k", "8K", "1M")] == [
        512, 1024, 1536, 8192, 1048576,
    ]  # fmt: skip
    assert parse_depths("100,0,50%") == (0.0, 0.5, 1.0)
    for bad in ("x", "0", "-1K"):
        with pytest.raises(HerdError):
            parse_tokens(bad)
    with pytest.raises(HerdError):
        parse_depths("0,120")
