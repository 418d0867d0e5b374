"""The probe on the real engine: exact lengths with the real tokenizer, the job, cancel.

These test the mechanics (lengths, depths, grid, events), not how well tiny models recall.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from app.core import events as ev
from app.core.chat.messages import ChatMessage
from app.core.engine.client import EngineClient
from app.core.jobs import CancelToken
from app.core.load import LoadRequest, Planned
from app.core.model_wishes import ModelWishes
from app.core.paths import AppPaths
from app.core.probe.job import CellDone, ProbeEstimate, ProbeFinished, load_and_probe, probe
from app.core.probe.needles import NeedleMaker
from app.core.probe.prompts import INTRO, FillerPool, build_prompt
from app.core.probe.result import ProbeSpec
from app.core.settings import LoadSettings

CTX = 1024


def _load(client: EngineClient, model: Path, n_ctx: int = CTX) -> None:
    request = LoadRequest(model, ModelWishes(n_ctx=n_ctx))
    from app.core.load import load_model

    events = list(load_model(client, request))
    assert isinstance(events[-1], ev.Loaded), events[-1]


@pytest.fixture
def smollm2(client: EngineClient, smollm2_gguf: Path) -> Iterator[EngineClient]:
    _load(client, smollm2_gguf)
    yield client


@pytest.fixture
def scout(client: EngineClient, tiny_scout: Path) -> Iterator[EngineClient]:
    """The tiny Llama 4 (fast on any CPU): for the mechanics, not the recall."""
    _load(client, tiny_scout)
    yield client


def test_prompts_land_near_their_length_with_the_real_tokenizer(smollm2: EngineClient) -> None:
    def count(messages: Sequence[ChatMessage]) -> int:
        return smollm2.count_tokens(messages=messages)

    pool, needles = FillerPool(0), NeedleMaker(0)
    for target in (300, 700, 990):
        for depth in (0.0, 0.4, 1.0):
            needle = needles.next()
            prompt = build_prompt(count, pool, target, depth, needle)
            assert target - 60 <= prompt.n_tokens <= target, (target, prompt.n_tokens)
            assert count(prompt.messages) == prompt.n_tokens
            # where the needle is, in the model's own tokens
            text = prompt.messages[-1].content
            start = len(INTRO)
            before = smollm2.count_tokens(text[start : text.index(needle.sentence)])
            filler = smollm2.count_tokens(
                text[start : text.rindex("\n\n")].replace(needle.sentence, "")
            )
            assert abs(before / filler - depth) < 0.05, (depth, before, filler)


def _run(client: EngineClient, spec: ProbeSpec, cancel: CancelToken | None = None) -> list:
    return list(probe(client, spec, cancel or CancelToken(), plan="p", kv_type="f16"))


def test_the_probe_fills_its_grid(scout: EngineClient) -> None:
    spec = ProbeSpec(lengths=(512, 1024, 2048), depths=(0.0, 1.0), trials=1)
    events = _run(scout, spec)
    estimate = next(e for e in events if isinstance(e, ProbeEstimate))
    assert estimate.cells == 4 and estimate.seconds > 0 and estimate.prompt_tok_s > 0
    assert any("2,048 tokens do not fit" in n for n in estimate.notes)
    done = [e for e in events if isinstance(e, CellDone)]
    assert [e.done for e in done] == [1, 2, 3, 4]
    assert done[-1].fraction == pytest.approx(1.0)
    assert isinstance(events[-1], ProbeFinished)
    result = events[-1].result
    assert result.complete and result.lengths == (512, 1024)
    assert len(result.grid()) == 2 and all(len(row) == 2 for row in result.grid())
    assert len({c.value for c in result.cells}) == 4  # a needle of its own per cell
    for cell in result.cells:
        room = CTX - spec.max_tokens - 1
        assert cell.n_tokens <= min(cell.length, room)
        assert cell.n_tokens >= min(cell.length, room) - 60
        assert cell.correct == (cell.value in cell.answer.replace(",", ""))
    assert result.to_json()["grid"] == result.grid()


def test_cancel_mid_run_gives_the_grid_so_far(scout: EngineClient) -> None:
    cancel = CancelToken()
    spec = ProbeSpec(lengths=(512,), depths=(0.0, 0.5, 1.0), trials=2)
    events = []
    for event in probe(scout, spec, cancel, plan="p", kv_type="f16"):
        events.append(event)
        if isinstance(event, CellDone):
            cancel.cancel()
    assert sum(isinstance(e, CellDone) for e in events) == 1
    result = events[-1].result
    assert not result.complete and len(result.cells) == 1
    assert result.grid() == [[result.accuracy(512, 0.0)], [None], [None]]


def test_llama4_loads_and_probes_in_its_official_format(paths: AppPaths, tiny_scout: Path) -> None:
    engine = EngineClient(paths)
    try:
        request = LoadRequest(tiny_scout, ModelWishes(n_ctx=512), base=LoadSettings())
        spec = ProbeSpec(lengths=(300,), depths=(0.5,), trials=1)
        events = list(load_and_probe(engine, request, spec, CancelToken()))
    finally:
        engine.shutdown()
    planned = next(e for e in events if isinstance(e, Planned))
    loaded = next(e for e in events if isinstance(e, ev.Loaded))
    assert "Llama 4" in loaded.facts.prompt_format
    result = events[-1].result
    assert result.complete and result.n_ctx == 512
    assert result.kv_type == str(planned.plan.type_k)
    assert result.plan and len(result.cells) == 1 and 240 <= result.cells[0].n_tokens <= 300
