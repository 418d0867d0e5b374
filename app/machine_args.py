"""The machine and wish flags ``herd plan`` and ``herd chat`` share, and what they mean.

Any machine can be described instead of probing this one (``--vram`` per GPU, ``--ram``,
``--unified``), and a model's wishes can be given for one run (``--ctx``, ``--kv``,
``--gpu-expert-layers``, ``--allow-disk``); flags not given keep the model's own wishes.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from app.core.errors import HerdError
from app.core.hardware.probe import Hardware
from app.core.hardware.spec import hardware_from_spec, parse_size
from app.core.hardware.workers import parse_endpoints, read_recorded
from app.core.model_wishes import ModelWishes
from app.core.settings import KVType


def add_machine_args(parser: argparse.ArgumentParser) -> None:
    """``--vram``, ``--ram``, ``--unified``, ``--gpu-name``."""
    parser.add_argument(
        "--vram", action="append", default=[], metavar="SIZE",
        help="a GPU's memory, e.g. 24GB (repeat per GPU)",
    )  # fmt: skip
    parser.add_argument(
        "--ram",
        metavar="SIZE",
        help="system RAM, e.g. 64GB (describes a machine instead of probing)",
    )
    parser.add_argument(
        "--unified", action="store_true", help="Apple unified memory: --ram is one pool"
    )
    parser.add_argument(
        "--gpu-name",
        help='the described GPU\'s model, e.g. "RTX 4090" or "M3 Ultra", for its memory bandwidth',
    )
    parser.add_argument(
        "--rpc", metavar="HOST:PORT[,...]", default="",
        help="also use these `herd worker`s' devices (llama.cpp RPC; trusted networks only)",
    )  # fmt: skip
    parser.add_argument(
        "--rpc-recorded", metavar="FILE",
        help="describe the workers from a recorded JSON list instead of asking them",
    )  # fmt: skip
    parser.add_argument(
        "--rpc-timeout", type=float, default=None, metavar="SECONDS",
        help="after this long without a word from the engine, stop it if a worker is silent (60)",
    )  # fmt: skip


def add_wish_args(parser: argparse.ArgumentParser, *, ctx_help: str) -> None:
    """``--ctx``, ``--kv``, ``--gpu-expert-layers``, ``--allow-disk``."""
    parser.add_argument("--ctx", type=int, default=None, help=ctx_help)
    parser.add_argument(
        "--kv", choices=[k.value for k in KVType], default=None, help="KV-cache type (f16)"
    )
    parser.add_argument(
        "--gpu-expert-layers", type=int, default=None,
        help="pin how many MoE layers keep their experts on the GPU",
    )  # fmt: skip
    parser.add_argument(
        "--allow-disk", action="store_true",
        help="allow reading weights beyond RAM from disk (slow)",
    )  # fmt: skip


def described_hardware(args: argparse.Namespace) -> Hardware | None:
    """The machine the flags describe, or None to use this one.

    Raises:
        HerdError: sizes that do not parse, or --vram/--unified without --ram.
    """
    if args.ram is None and not args.vram and not args.unified:
        return None
    if args.ram is None:
        raise HerdError("--vram and --unified need --ram too.", "Add e.g. --ram 64GB.")
    hw = hardware_from_spec([parse_size(v) for v in args.vram], parse_size(args.ram), args.unified)
    if args.gpu_name:
        named = tuple(dataclasses.replace(d, description=args.gpu_name) for d in hw.devices)
        hw = dataclasses.replace(hw, devices=named)
    return hw


def worker_args(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~app.core.load.LoadRequest` fields the worker flags give.

    Raises:
        HerdError: an address that is not HOST:PORT, or an unreadable recorded list.
    """
    out: dict[str, Any] = {"rpc": parse_endpoints(args.rpc or "")}
    if args.rpc_recorded:
        out["workers"] = read_recorded(Path(args.rpc_recorded))
    if args.rpc_timeout is not None:
        if args.rpc_timeout <= 0:
            raise HerdError("--rpc-timeout must be more than zero seconds.")
        out["rpc_timeout_s"] = args.rpc_timeout
    return out


def wishes_from_args(args: argparse.Namespace, kept: ModelWishes) -> ModelWishes:
    """The model's own wishes ``kept``, with the flags given on this command line."""
    wishes = kept
    if args.ctx is not None:
        if args.ctx <= 0:
            raise HerdError(f"--ctx {args.ctx} is not a context length.", "Give e.g. --ctx 8192.")
        wishes = dataclasses.replace(wishes, n_ctx=args.ctx)
    if args.kv is not None:
        wishes = dataclasses.replace(wishes, kv_type=KVType(args.kv))
    if args.gpu_expert_layers is not None:
        wishes = dataclasses.replace(wishes, gpu_expert_layers=args.gpu_expert_layers)
    if args.allow_disk:
        wishes = dataclasses.replace(wishes, allow_disk=True)
    return wishes
