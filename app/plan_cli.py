"""``herd plan MODEL``: where each part of a model goes on a machine, as text or JSON.

Any machine can be planned from any other: ``--vram`` (one per GPU), ``--ram`` and
``--unified`` describe it instead of probing this one. Exit codes: 0 the plan fits,
3 it does not (text output only; with ``--json`` the JSON says ``"fits": false``),
2 a bad file or argument, or a model ``herd chat`` would refuse (another architecture).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from app.core.errors import HerdError
from app.core.gguf import read_gguf, require_supported
from app.core.hardware import Hardware, hardware_from_spec, parse_size, probe_hardware
from app.core.plan_text import describe
from app.core.planner import Wishes, make_plan
from app.core.settings import KVType

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_DOES_NOT_FIT = 3


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``herd plan`` on the main parser's subcommands."""
    plan = sub.add_parser("plan", help="plan expert offloading and context for a model")
    plan.add_argument("model")
    # fmt: off
    plan.add_argument("--ctx", type=int, default=None, help="context length (default: largest that fits, up to 131072)")
    plan.add_argument("--kv", choices=[k.value for k in KVType], default="f16", help="KV-cache type")
    plan.add_argument("--vram", action="append", default=[], metavar="SIZE", help="a GPU's memory, e.g. 24GB (repeat per GPU)")
    plan.add_argument("--ram", metavar="SIZE", help="system RAM, e.g. 64GB (describes a machine instead of probing)")
    plan.add_argument("--unified", action="store_true", help="Apple unified memory: --ram is one pool")
    plan.add_argument("--gpu-name", help='the described GPU\'s model, e.g. "RTX 4090" or "M3 Ultra", for its memory bandwidth')
    plan.add_argument("--gpu-expert-layers", type=int, default=None, help="pin how many MoE layers keep their experts on the GPU")
    plan.add_argument("--allow-disk", action="store_true", help="allow reading weights beyond RAM from disk (slow)")
    # fmt: on
    plan.add_argument("--json", action="store_true", help="print JSON for scripts")


def _hardware(args: argparse.Namespace) -> Hardware:
    if args.ram is None and not args.vram and not args.unified:
        return probe_hardware()
    if args.ram is None:
        raise HerdError("--vram and --unified need --ram too.", "Add e.g. --ram 64GB.")
    hw = hardware_from_spec([parse_size(v) for v in args.vram], parse_size(args.ram), args.unified)
    if args.gpu_name:
        named = tuple(dataclasses.replace(d, description=args.gpu_name) for d in hw.devices)
        hw = dataclasses.replace(hw, devices=named)
    return hw


def run(args: argparse.Namespace) -> int:
    """Plan and print; returns the exit code."""
    try:
        info = read_gguf(Path(args.model))
        require_supported(info)  # refuse what `herd chat` refuses, in the same words
        hardware = _hardware(args)
        wishes = Wishes(
            n_ctx=args.ctx,
            kv_type=KVType(args.kv),
            gpu_expert_layers=args.gpu_expert_layers,
            allow_disk=args.allow_disk,
        )
        plan = make_plan(info, hardware, wishes)
    except HerdError as exc:
        print(f"herd: {exc.one_line()}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
        return EXIT_OK
    print(describe(plan))
    return EXIT_OK if plan.fits else EXIT_DOES_NOT_FIT
