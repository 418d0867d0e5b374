"""``herd plan MODEL``: where each part of a model goes on a machine, as text or JSON.

Any machine can be planned from any other: ``--vram`` (one per GPU), ``--ram`` and
``--unified`` describe it instead of probing this one. Exit codes: 0 the plan fits,
3 it does not (text output only; with ``--json`` the JSON says ``"fits": false``),
2 a bad file or argument, or a model ``herd chat`` would refuse (another architecture).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app import machine_args
from app.core.engine.client import EngineClient
from app.core.errors import HerdError
from app.core.gguf.info import read_gguf, require_supported
from app.core.load import LoadRequest, plan_on
from app.core.model_wishes import WISHES_FILE, WishStore
from app.core.paths import AppPaths
from app.core.plan.search import DEFAULT_MAX_AUTO_CTX
from app.core.plan.words import describe
from app.machine_args import described_hardware, wishes_from_args

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_DOES_NOT_FIT = 3


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``herd plan`` on the main parser's subcommands."""
    plan = sub.add_parser("plan", help="plan expert offloading and context for a model")
    plan.add_argument("model", help="the .gguf file (the first part of a split model)")
    machine_args.add_wish_args(
        plan,
        ctx_help=f"context length (default: the model's own, else the largest that fits, up to "
        f"{DEFAULT_MAX_AUTO_CTX})",
    )
    machine_args.add_machine_args(plan)
    plan.add_argument("--json", action="store_true", help="print JSON for scripts")


def run(args: argparse.Namespace, paths: AppPaths) -> int:
    """Plan and print; returns the exit code.

    The same plan a load would use: this model's own wishes with the flags given, on the
    described machine or on this one as llama.cpp sees it (:func:`app.core.load.machine`).
    """
    try:
        info = read_gguf(Path(args.model))
        require_supported(info)  # refuse what `herd chat` refuses, in the same words
        kept = WishStore(paths.config / WISHES_FILE).get(info.path)
        request = LoadRequest(
            info.path,
            wishes_from_args(args, kept),
            hardware=described_hardware(args),
            **machine_args.worker_args(args),
        )
        with EngineClient(paths) as engine:  # started only to ask this machine's devices
            plan = plan_on(engine, info, request).plan
    except HerdError as exc:
        print(f"herd: {exc.one_line()}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
        return EXIT_OK
    print(describe(plan))
    return EXIT_OK if plan.fits else EXIT_DOES_NOT_FIT
