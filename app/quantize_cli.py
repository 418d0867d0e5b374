"""``herd quantize SRC.gguf OUT.gguf --recipe NAME``: MoE-aware quantization from a recipe.

Before anything is written it prints what will be: each pattern's type, the predicted
size, and the planner's verdict on the recipe's machine (or one described with
``--vram``/``--ram``/``--unified``). ``--dry-run`` stops there; ``--list-recipes`` shows
every recipe with its predicted size for Scout and Maverick. Progress and the time left go
to stderr; Ctrl+C stops and deletes the partial output. Exit codes: 0 done, 2 a bad file,
argument or a failed quantization, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from app import machine_args
from app.core.errors import HerdError
from app.core.gguf.info import read_gguf
from app.core.hardware.probe import Hardware, probe_hardware
from app.core.jobs import CancelToken
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.core.units import size_text
from quantize.job import (
    QuantizeCancelled,
    QuantizeFinished,
    QuantizePlan,
    QuantizeProgress,
    QuantizeRequest,
    plan_quantize,
    run_quantize,
)
from quantize.layouts import family_info
from quantize.predict import predict
from quantize.recipe import Recipe, load_recipes, recipe_named
from quantize.verdict import choose_recipe, judge

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_CANCELLED = 130


def _say(text: str, file: TextIO | None = None) -> None:
    """One line to ``file`` (stdout by default): the CLI's only output."""
    (file or sys.stdout).write(f"{text}\n")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``herd quantize``."""
    p = sub.add_parser("quantize", help="quantize a Llama 4 GGUF with an MoE-aware recipe")
    p.add_argument(
        "src", nargs="?", help="the source .gguf (F32/BF16/F16; the first part if split)"
    )
    p.add_argument("out", nargs="?", help="the .gguf to write")
    p.add_argument(
        "--recipe",
        help="the recipe's name (see --list-recipes), or auto: the planner picks for the "
        "described machine (--vram/--ram/--unified), else for this one",
    )
    p.add_argument("--imatrix", metavar="FILE", help="llama-imatrix's file (.gguf or legacy .dat)")
    p.add_argument("--dry-run", action="store_true", help="predict and judge only; write nothing")
    p.add_argument("--json", action="store_true", help="print a JSON summary for scripts")
    p.add_argument("--list-recipes", action="store_true", help="list the recipes and exit")
    p.add_argument(
        "--keep-split", action="store_true", help="write as many parts as a split source has"
    )
    p.add_argument("--threads", type=int, default=0, help="quantizer threads (default: all)")
    machine_args.add_machine_args(p)


def run(args: argparse.Namespace, paths: AppPaths, settings: Settings) -> int:
    """Run ``herd quantize``; returns the exit code."""
    try:
        if args.list_recipes:
            return _list(as_json=args.json)
        if not args.src or not args.out or not args.recipe:
            raise HerdError(
                "herd quantize needs SRC, OUT and --recipe.",
                "e.g. herd quantize model-F16.gguf model-mix.gguf --recipe scout-24gb-gpu",
            )
        hardware = machine_args.described_hardware(args)
        if args.recipe == "auto":
            recipe, hardware = _auto(Path(args.src), hardware)
        else:
            recipe = recipe_named(args.recipe)
        request = QuantizeRequest(
            src=Path(args.src),
            out=Path(args.out),
            recipe=recipe,
            imatrix=Path(args.imatrix) if args.imatrix else None,
            keep_split=args.keep_split,
            threads=args.threads,
            hardware=hardware,
        )
        plan = plan_quantize(request)
    except HerdError as exc:
        _say(f"herd: {exc.one_line()}", file=sys.stderr)
        return EXIT_ERROR
    _say(_describe(plan), file=sys.stderr)
    if args.dry_run:
        if args.json:
            _say(json.dumps(_summary(plan), indent=2))
        return EXIT_OK
    log_path = paths.logs / f"quantize-{plan.request.out.stem}.log"
    return _write(plan, log_path, as_json=args.json)


def _auto(src: Path, hardware: Hardware | None) -> tuple[Recipe, Hardware]:
    """The recipe the planner picks for this model on the described machine, or this one."""
    hw = hardware or probe_hardware()
    chosen = choose_recipe(read_gguf(src), hw)
    if chosen is None:
        raise HerdError(
            f"No recipe is made for {src.name}: recipes are for Llama 4 Scout and Maverick.",
            "Name one with --recipe (see --list-recipes).",
        )
    _say(f"chose {chosen[0].name} ({chosen[0].title}) for this machine", file=sys.stderr)
    return chosen[0], hw


def _write(plan: QuantizePlan, log_path: Path, *, as_json: bool) -> int:
    cancel = CancelToken()
    shown = 0.0
    try:
        for event in run_quantize(plan, cancel, log_path=log_path):
            if isinstance(event, QuantizeProgress) and time.monotonic() - shown > 0.5:
                shown = time.monotonic()
                _progress(event)
            elif isinstance(event, QuantizeCancelled):
                _say("\nherd: cancelled; the partial output was deleted.", file=sys.stderr)
                return EXIT_CANCELLED
            elif isinstance(event, QuantizeFinished):
                _say(
                    f"\rwrote {', '.join(str(p) for p in event.outputs)} "
                    f"({size_text(event.written)}) in {event.seconds:.1f} s",
                    file=sys.stderr,
                )
                if as_json:
                    summary = _summary(plan) | {
                        "outputs": [str(p) for p in event.outputs],
                        "written_bytes": event.written,
                        "seconds": round(event.seconds, 2),
                    }
                    _say(json.dumps(summary, indent=2))
                return EXIT_OK
    except KeyboardInterrupt:  # the job's own cleanup ran as the exception passed through it
        _say("\nherd: cancelled; the partial output was deleted.", file=sys.stderr)
        return EXIT_CANCELLED
    except HerdError as exc:
        _say(f"\nherd: {exc.one_line()}", file=sys.stderr)
        if exc.log_path:
            _say(f"herd: the log: {exc.log_path}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR


def _progress(p: QuantizeProgress) -> None:
    eta = f", about {_duration(p.eta_s)} left" if p.eta_s is not None else ""
    sys.stderr.write(
        f"\r{p.fraction * 100:5.1f}%  {size_text(p.written)} of {size_text(p.expected)}{eta}   "
    )
    sys.stderr.flush()


def _duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _describe(plan: QuantizePlan) -> str:
    """What will be written, and the planner's verdict, in words."""
    r, pred = plan.request.recipe, plan.prediction
    lines = [f"recipe {r.name}: {r.title}"]
    for pattern, g in pred.by_pattern().items():
        types = ", ".join(f"{t} x{n}" if len(g["types"]) > 1 else t for t, n in g["types"].items())
        lines.append(f"  {pattern:<18} {types:<16} {size_text(g['bytes']):>10}")
    lines.append(f"predicted size: {size_text(pred.file_bytes)} ({pred.file_bytes} bytes)")
    lines.append(f"on {plan.verdict.machine}: {plan.verdict.summary()}")
    lines += [f"warning: {w}" for w in plan.warnings]
    return "\n".join(lines)


def _summary(plan: QuantizePlan) -> dict[str, Any]:
    r, pred = plan.request.recipe, plan.prediction
    return {
        "recipe": r.name,
        "title": r.title,
        "source": str(plan.info.path),
        "outputs": [str(p) for p in plan.outputs],
        "predicted_bytes": pred.file_bytes,
        "patterns": pred.by_pattern(),
        "verdict": plan.verdict.to_json(),
        "needs_imatrix": r.needs_imatrix,
        "warnings": list(plan.warnings),
    }


def recipe_rows() -> list[dict[str, Any]]:
    """Each recipe with its predicted size on Scout and Maverick, and its verdict."""
    infos = {f: family_info(f) for f in ("scout", "maverick")}
    rows = []
    for recipe in load_recipes():
        preds = {f: predict(info, recipe) for f, info in infos.items()}
        own = recipe.family if recipe.family in preds else "scout"
        verdict = judge(preds[own], recipe)
        rows.append(_row(recipe, {f: p.file_bytes for f, p in preds.items()}, own, verdict))
    return rows


def _row(recipe: Recipe, sizes: dict[str, int], own: str, verdict: Any) -> dict[str, Any]:
    return {
        "name": recipe.name,
        "title": recipe.title,
        "family": recipe.family,
        "types": recipe.types(),
        "needs_imatrix": recipe.needs_imatrix,
        "note": " ".join(recipe.note.split()),
        "predicted_bytes": sizes,
        "verdict_for": own,
        "verdict": verdict.to_json() | {"summary": verdict.summary()},
    }


def _list(*, as_json: bool) -> int:
    rows = recipe_rows()
    if as_json:
        _say(json.dumps(rows, indent=2))
        return EXIT_OK
    _say(f"{'RECIPE':<20} {'FOR':<46} {'SCOUT':>10} {'MAVERICK':>10}")
    for row in rows:
        s, m = row["predicted_bytes"]["scout"], row["predicted_bytes"]["maverick"]
        _say(f"{row['name']:<20} {row['title']:<46} {size_text(s):>10} {size_text(m):>10}")
        types = ", ".join(f"{k}={v}" for k, v in row["types"].items()) or "llama.cpp's own mix"
        _say(f"    {types}")
        imatrix = "; needs --imatrix" if row["needs_imatrix"] else ""
        fam = row["verdict_for"].capitalize()
        _say(f"    {fam} on {row['verdict']['machine']}: {row['verdict']['summary']}{imatrix}")
        if row["note"]:
            _say(f"    note: {row['note']}")
    return EXIT_OK
