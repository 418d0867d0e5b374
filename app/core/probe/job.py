"""The probe job: hide needles at depths of prompts of given lengths, and ask for them.

It runs on a loaded model (``herd probe`` loads it exactly as ``herd chat`` does), or
loads it first through THE load job (:func:`load_and_probe`, the window's way, in an
engine of its own). Each cell is one prompt in the model's chat format, answered
greedily in a few tokens. A first small prompt measures the prompt speed, from which the
whole probe's time is estimated (:class:`ProbeEstimate`) before any cell runs: a caller
that does not want to wait that long cancels the token there.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass

from app.core import events as ev
from app.core.chat.messages import ChatMessage
from app.core.demo import DEMO_NAME, is_demo
from app.core.engine.client import EngineClient
from app.core.errors import HerdError
from app.core.jobs import CancelToken
from app.core.load import LoadRequest, Planned, load_model, summary
from app.core.paths import AppPaths
from app.core.probe.needles import NeedleMaker
from app.core.probe.prompts import FillerPool, HaystackPrompt, build_prompt
from app.core.probe.result import Cell, ProbeResult, ProbeSpec, fit_lengths
from app.core.settings import SamplingSettings

WARMUP_TOKENS = 512  # the prompt that measures the prompt speed
CELL_OVERHEAD_S = 0.05  # counting tokens and the round trips, per cell


@dataclass(frozen=True, slots=True)
class ProbeEstimate:
    """How long the probe will take, from the measured prompt speed (before any cell)."""

    cells: int
    seconds: float
    prompt_tok_s: float
    notes: tuple[str, ...] = ()  # lengths skipped or shortened


@dataclass(frozen=True, slots=True)
class CellDone:
    """One needle was asked for."""

    cell: Cell
    done: int
    total: int
    fraction: float  # of the probe's tokens
    eta_s: float  # the time left, from the speed so far


@dataclass(frozen=True, slots=True)
class ProbeFinished:
    """The probe ended, complete or cancelled (``result.complete``)."""

    result: ProbeResult


ProbeEvent = ProbeEstimate | CellDone | ProbeFinished | Planned | ev.EngineEvent


def greedy(max_tokens: int) -> SamplingSettings:
    """The sampling every cell uses: the likeliest token, always."""
    return SamplingSettings(temperature=0.0, top_p=1.0, max_tokens=max_tokens, seed=0)


def probe(
    engine: EngineClient,
    spec: ProbeSpec,
    cancel: CancelToken,
    *,
    plan: str = "",
    kv_type: str = "",
) -> Iterator[ProbeEvent]:
    """Run every cell on the loaded model: ProbeEstimate, CellDone..., ProbeFinished.

    A failure ends it with Failed or EngineCrashed (and no result); a cancel with a
    ProbeFinished whose result is not complete.
    """
    facts = engine.facts
    if facts is None:
        yield ev.Failed("No model is loaded.", "Load a model first.")
        return
    fitted, notes = fit_lengths(spec.lengths, facts.n_ctx, spec.max_tokens)
    if not fitted:
        yield ev.Failed(
            f"None of the lengths fits the {facts.n_ctx:,}-token context.",
            "Choose shorter lengths (--lengths) or a longer context (--ctx).",
        )
        return

    def count(messages: Sequence[ChatMessage]) -> int:
        return engine.count_tokens(messages=messages)

    speed = [0.0]  # the measured prompt speed, once known
    cells: list[Cell] = []
    lengths = tuple(n for n, _ in fitted)

    def result(complete: bool) -> ProbeResult:
        return ProbeResult(
            model=DEMO_NAME if is_demo(facts.path) else (facts.name or facts.path),
            path=facts.path,
            n_ctx=facts.n_ctx,
            kv_type=kv_type,
            plan=plan,
            lengths=lengths,
            depths=spec.depths,
            trials=spec.trials,
            cells=tuple(cells),
            seconds=time.monotonic() - started,
            complete=complete,
            notes=tuple(notes),
            prompt_tok_s=speed[0],
        )

    started = time.monotonic()
    yield ev.Progress(0.0, "Measuring the prompt speed…")
    try:
        warm = build_prompt(
            count,
            FillerPool(spec.seed + 7919),
            min(WARMUP_TOKENS, fitted[0][1]),
            0.5,
            NeedleMaker(spec.seed + 7919).next(),
        )
    except HerdError as exc:
        yield ev.Failed(exc.user_message, exc.hint)
        return
    outcome = yield from _ask(engine, warm, spec, cancel)
    if isinstance(outcome, ev.Failed | ev.EngineCrashed):
        yield outcome
        return
    if outcome is None:
        yield ProbeFinished(result(False))
        return
    pp = speed[0] = max(outcome.prompt_tok_s, 1.0)
    decode = max(outcome.decode_tok_s, 1.0)
    work = evaluated_tokens([t for _, t in fitted], spec.depths, spec.trials)
    answer_s = spec.max_tokens / decode
    estimate = sum(w / pp + answer_s + CELL_OVERHEAD_S for w in work)
    yield ProbeEstimate(len(work), estimate, pp, tuple(notes))

    needles = NeedleMaker(spec.seed)
    total_work, done_work = sum(work), 0
    cells_started = time.monotonic()
    for trial in range(spec.trials):
        pool = FillerPool(spec.seed * 1000 + trial)
        for length, target in fitted:
            hint: int | None = None
            for depth in spec.depths:
                if cancel.cancelled:
                    yield ProbeFinished(result(False))
                    return
                t0 = time.monotonic()
                try:
                    prompt = build_prompt(count, pool, target, depth, needles.next(), hint=hint)
                except HerdError as exc:
                    yield ev.Failed(exc.user_message, exc.hint)
                    return
                hint = prompt.n_sentences
                outcome = yield from _ask(engine, prompt, spec, cancel)
                if isinstance(outcome, ev.Failed | ev.EngineCrashed):
                    yield outcome
                    return
                if outcome is None:  # stopped by the cancel, mid-answer: not scored
                    yield ProbeFinished(result(False))
                    return
                answer = outcome.text.strip()
                cells.append(
                    Cell(
                        length=length,
                        depth=depth,
                        trial=trial,
                        key=prompt.needle.key,
                        value=prompt.needle.value,
                        answer=answer,
                        correct=prompt.needle.found_in(answer),
                        n_tokens=prompt.n_tokens,
                        needle_at=prompt.needle_at,
                        seconds=time.monotonic() - t0,
                    )
                )
                done_work += work[len(cells) - 1]
                spent = time.monotonic() - cells_started
                eta = spent / done_work * (total_work - done_work)
                yield CellDone(cells[-1], len(cells), len(work), done_work / total_work, eta)
    yield ProbeFinished(result(True))


def evaluated_tokens(targets: Sequence[int], depths: Sequence[float], trials: int) -> list[int]:
    """About how many prompt tokens each cell evaluates, in the order the cells run.

    The engine reuses the prompt it evaluated last as far as the new one starts the same,
    and one trial's prompts share their filler from the start: a cell evaluates from the
    previous cell's needle on. Cells run depth by depth, length by length, trial by trial.
    """
    out: list[int] = []
    for _ in range(trials):
        shared = 0  # the last cell's tokens before its needle (a new trial: new filler)
        for target in targets:
            for depth in depths:
                out.append(max(target - min(shared, target), 1))
                shared = round(depth * target)
    return out


Answer = ev.Finished | ev.Failed | ev.EngineCrashed | None


def _ask(
    engine: EngineClient, prompt: HaystackPrompt, spec: ProbeSpec, cancel: CancelToken
) -> Generator[ProbeEvent, None, Answer]:
    """Generate one answer; returns its Finished, a failure, or None when cancelled."""
    finished: ev.Finished | None = None
    for event in engine.chat(prompt.messages, greedy(spec.max_tokens), cancel):
        if isinstance(event, ev.Finished):
            finished = event
        elif isinstance(event, ev.Failed):
            return None if event.cancelled or cancel.cancelled else event
        elif isinstance(event, ev.EngineCrashed):
            return event
        elif isinstance(event, ev.Notice):
            yield event
    if finished is not None and finished.stop_reason is ev.StopReason.USER:
        return None
    return finished


def load_and_probe(
    engine: EngineClient, request: LoadRequest, spec: ProbeSpec, cancel: CancelToken
) -> Iterator[ProbeEvent]:
    """THE load job with ``request``, then the probe on the model it loaded."""
    planned: Planned | None = None
    for event in load_model(engine, request, cancel):
        if isinstance(event, Planned):
            planned = event
        yield event
        if isinstance(event, ev.Failed | ev.EngineCrashed):
            return
    if planned is None or engine.facts is None or not planned.plan.fits:
        return
    yield from probe(engine, spec, cancel, plan=plan_key(planned), kv_type=str(planned.plan.type_k))


def probe_in_own_engine(
    paths: AppPaths, request: LoadRequest, spec: ProbeSpec, cancel: CancelToken
) -> Iterator[ProbeEvent]:
    """:func:`load_and_probe` in an engine process of its own, shut down at the end."""
    engine = EngineClient(paths)
    try:
        yield from load_and_probe(engine, request, spec, cancel)
    finally:
        engine.shutdown()


def plan_key(planned: Planned) -> str:
    """Where the model ran, in words: the plan's placement, e.g. "all on the CPU"."""
    return summary(planned.plan).split(" · ")[0].removeprefix("Plan: ")
