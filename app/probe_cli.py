"""``herd probe MODEL --ctx N``: how well the model recalls a fact hidden deep in a long prompt.

The model loads exactly as ``herd chat`` loads it (the load job, the same wish and machine
flags). A needle (a secret number under a random key) is hidden at each depth of prompts
of each length, and the model is asked for it; the depth × length grid of recall goes to
stdout (``--json``: the machine-readable result), progress and questions to stderr.
Before the cells run, the time they will take is estimated from the measured prompt speed
and the person is asked (``--yes`` does not ask; without a terminal it must be given).
Ctrl+C stops after the current answer and prints the grid so far (exit code 130).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from pathlib import Path

from app import machine_args
from app.cli import EXIT_ERROR, EXIT_OK, fail, load_for_cli, load_request
from app.core import events as ev
from app.core.engine.client import EngineClient
from app.core.errors import HerdError, one_line
from app.core.jobs import CancelToken
from app.core.load import plan_on
from app.core.paths import AppPaths
from app.core.probe.heatmap import save_heatmap
from app.core.probe.job import CellDone, ProbeEstimate, ProbeFinished, plan_key, probe
from app.core.probe.result import DEFAULT_DEPTHS, ProbeResult, ProbeSpec, default_lengths
from app.core.probe.store import ProbeStore
from app.core.probe.words import duration, estimate_text, grid_text
from app.core.settings import Settings

EXIT_STOPPED = 130  # stopped with Ctrl+C (the grid so far is printed)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``probe`` to the command line."""
    p = sub.add_parser(
        "probe", help="measure how well a model recalls facts hidden deep in long prompts"
    )
    p.add_argument("model", help="the .gguf file (the first part of a split model)")
    machine_args.add_wish_args(
        p, ctx_help="the context to probe, in tokens (default: the model's own, else the plan's)"
    )
    machine_args.add_machine_args(p)
    p.add_argument(
        "--depths", help="needle depths in percent, e.g. 0,50,100 (default: 0,10,...,100)"
    )
    p.add_argument(
        "--lengths",
        help="prompt lengths in tokens, e.g. 1K,2K,4K,8K (default: an eighth, a quarter, "
        "half and all of the context)",
    )
    p.add_argument("--trials", type=int, default=1, help="needles per cell")
    p.add_argument("--seed", type=int, default=0, help="the same seed, the same prompts")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the plan's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--png", metavar="FILE", help="also draw the grid as a heat map PNG")
    p.add_argument("--yes", "-y", action="store_true", help="start without asking")


def parse_tokens(text: str) -> int:
    """``4096``, ``4K``, ``1.5k``, ``1M`` as tokens (K = 1024).

    Raises:
        HerdError: it is no token count.
    """
    m = _SIZE.match(text)
    if not m:
        raise HerdError(f"{text!r} is not a length in tokens.", "Give e.g. --lengths 1K,2K,4K.")
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    value = round(float(m.group(1)) * scale)
    if value <= 0:
        raise HerdError(f"{text!r} is not a length in tokens.", "Give e.g. --lengths 1K,2K,4K.")
    return value


def parse_depths(text: str) -> tuple[float, ...]:
    """``0,25,50`` (percent, a trailing % allowed) as fractions, in order.

    Raises:
        HerdError: a depth is no number from 0 to 100.
    """
    out = []
    for part in text.split(","):
        try:
            value = float(part.strip().removesuffix("%"))
        except ValueError:
            value = -1.0
        if not 0 <= value <= 100:
            raise HerdError(f"{part.strip()!r} is not a depth from 0 to 100 (percent).")
        out.append(value / 100)
    return tuple(sorted(set(out)))


def _spec(args: argparse.Namespace, n_ctx: int) -> ProbeSpec:
    lengths = (
        tuple(sorted({parse_tokens(t) for t in args.lengths.split(",")}))
        if args.lengths
        else default_lengths(n_ctx)
    )
    depths = parse_depths(args.depths) if args.depths else DEFAULT_DEPTHS
    return ProbeSpec(lengths=lengths, depths=depths, trials=args.trials, seed=args.seed)


def _say(text: str) -> None:
    sys.stderr.write(f"{text}\n")
    sys.stderr.flush()


def _ask(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in {"", "y", "yes"}


def run(args: argparse.Namespace, paths: AppPaths, settings: Settings) -> int:
    """Run ``herd probe``; returns the exit code."""
    try:
        if args.trials < 1:
            raise HerdError("--trials must be 1 or more.")
        if args.lengths:
            [parse_tokens(t) for t in args.lengths.split(",")]  # refused before the load
        if args.depths:
            parse_depths(args.depths)
        if not args.yes and not sys.stdin.isatty():
            raise HerdError(
                "herd probe asks before it starts (it can take long), but stdin is not a "
                "terminal to answer on.",
                "Pass --yes to start without asking.",
            )
        info_, request = load_request(args, paths, settings, with_projector=False)
    except HerdError as exc:
        return fail(exc.one_line())
    try:
        with EngineClient(paths) as engine:
            code = load_for_cli(engine, request, show_plan=False)
            if code is not None:
                return code
            assert engine.facts is not None
            planned = plan_on(engine, info_, request)
            spec = _spec(args, engine.facts.n_ctx)
            kv = str(planned.plan.type_k)
            _say(f"herd: probing {info_.path.name} at {engine.facts.n_ctx:,} tokens, {kv} KV")
            return _probe(engine, spec, args, paths, plan=plan_key(planned), kv_type=kv)
    except KeyboardInterrupt:
        _say("herd: stopped before the probe began.")
        return EXIT_STOPPED


def _probe(
    engine: EngineClient,
    spec: ProbeSpec,
    args: argparse.Namespace,
    paths: AppPaths,
    *,
    plan: str,
    kv_type: str,
) -> int:
    cancel = CancelToken()
    result: ProbeResult | None = None
    previous = None
    try:
        for event in probe(engine, spec, cancel, plan=plan, kv_type=kv_type):
            if isinstance(event, ev.Progress) and event.message:
                _say(f"herd: {event.message}")
            elif isinstance(event, ev.Notice):
                _say(f"herd: note: {event.message}")
            elif isinstance(event, ProbeEstimate):
                for note in event.notes:
                    _say(f"herd: note: {note}")
                _say(f"herd: {estimate_text(event)}")
                if not args.yes and not _ask("Start the probe? [Y/n] "):
                    _say("herd: nothing was run.")
                    return EXIT_OK
                previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
            elif isinstance(event, CellDone):
                _progress(event)
            elif isinstance(event, ev.EngineCrashed):
                return fail(event.message)
            elif isinstance(event, ev.Failed):
                return fail(one_line(event.message, event.hint))
            elif isinstance(event, ProbeFinished):
                result = event.result
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if result is None:
        return fail("the probe ended without a result")
    return _report(result, args, paths)


def _progress(event: CellDone) -> None:
    cell = event.cell
    mark = "found" if cell.correct else f"missed (answered {cell.answer[:40]!r})"
    _say(
        f"herd: [{event.done}/{event.total}] {cell.n_tokens:,} tokens, needle at "
        f"{cell.depth * 100:.0f}%: {mark}; about {duration(event.eta_s)} left"
    )


def _report(result: ProbeResult, args: argparse.Namespace, paths: AppPaths) -> int:
    text = grid_text(result)
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        _say(text)
    else:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()
    code = EXIT_OK if result.complete else EXIT_STOPPED
    if args.png:
        try:
            save_heatmap(result, Path(args.png))
        except OSError as exc:
            _say(f"herd: could not write {args.png}: {exc}")
            code = EXIT_ERROR
    if result.complete:
        try:
            ProbeStore.at(paths).add(result)
        except OSError as exc:
            _say(f"herd: warning: the result was not kept: {exc}")
    return code
