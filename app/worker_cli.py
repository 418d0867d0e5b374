"""``herd worker``: serve this machine's devices to Herd on other machines.

llama.cpp's RPC server does the work (``ggml_backend_rpc_start_server``), in a child
process as the engine runs (llama.cpp may only run there, and a crash ends only the
child). Herd adds its info port (PORT + 1: what is served, the memory budget, the link
test) and a refusal to listen beyond this machine unless the person says they know the
protocol is unauthenticated. Exit codes: 0 after Ctrl-C, 1 when the server cannot
start, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import subprocess
import sys
from typing import Any

from app.core.child_argv import python_module_argv
from app.core.engine.process import engine_child_env
from app.core.errors import HerdError
from app.core.hardware.probe import physical_cores
from app.core.hardware.spec import parse_size
from app.core.hardware.workers import DEFAULT_PORT
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.core.units import size_text

UNSAFE_FLAG = "--i-understand-this-is-unauthenticated"
EXIT_FAILED, EXIT_USAGE = 1, 2


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``herd worker``."""
    worker = sub.add_parser(
        "worker",
        help="serve this machine's CPU/GPU to Herd on another machine (llama.cpp RPC)",
        description="Serve this machine's devices over llama.cpp's RPC protocol. It has no "
        "password and no encryption: use it only on a trusted LAN, or through an SSH tunnel.",
    )
    worker.add_argument("--host", default="127.0.0.1", help="address to listen on")
    worker.add_argument(
        "--port", type=int, default=DEFAULT_PORT,
        help="llama.cpp's RPC port; Herd's info port is the next one",
    )  # fmt: skip
    worker.add_argument(
        "--devices",
        default="",
        help="devices to serve, e.g. CUDA0,CPU (default: the GPUs, else CPU)",
    )
    worker.add_argument("--threads", type=int, default=None, help="CPU threads (physical cores)")
    worker.add_argument(
        "--cache", metavar="DIR", help="llama.cpp's tensor cache, kept across loads"
    )
    worker.add_argument(
        "--memory", metavar="SIZE", help="offer at most this much of each device, e.g. 64GB"
    )
    worker.add_argument(
        UNSAFE_FLAG, dest="unauthenticated_ok", action="store_true",
        help="allow an address other than loopback: anyone who reaches the port can use it",
    )  # fmt: skip


def loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The child's options from the command line.

    Raises:
        HerdError: a non-loopback address without the flag, a bad port or size.
    """
    if not loopback(args.host) and not args.unauthenticated_ok:
        raise HerdError(
            f"Refusing to listen on {args.host}: llama.cpp's RPC protocol has no password "
            "and no encryption, so anyone who can reach the port can use this machine's "
            "memory and send it data.",
            f"Use it only on a trusted LAN (add {UNSAFE_FLAG}), or keep 127.0.0.1 and reach "
            f"it through an SSH tunnel (ssh -L {args.port}:127.0.0.1:{args.port} "
            f"-L {args.port + 1}:127.0.0.1:{args.port + 1} THIS-HOST).",
        )
    if not 0 < args.port < 65535:
        raise HerdError(f"--port {args.port} is not a port.", "Give one from 1 to 65534.")
    return {
        "host": args.host,
        "port": args.port,
        "devices": [d.strip() for d in args.devices.split(",") if d.strip()],
        "threads": args.threads or physical_cores(),
        "cache": args.cache or "",
        "memory": parse_size(args.memory) if args.memory else 0,
    }


def _say(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def run(args: argparse.Namespace, paths: AppPaths, settings: Settings) -> int:
    """Serve until Ctrl-C (or the server stops); returns the exit code."""
    try:
        opts = options(args)
    except HerdError as exc:
        _say(f"herd: {exc.one_line()}", err=True)
        return EXIT_USAGE
    log = paths.logs / f"worker-{opts['port']}.log"
    argv = python_module_argv("app.core.engine.rpc_server", str(log), json.dumps(opts))
    child = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=engine_child_env()
    )  # the child ends when its stdin closes: when this process ends, however it ends
    assert child.stdout is not None
    previous = signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    try:
        line = child.stdout.readline()
        status: dict[str, Any] = json.loads(line) if line.strip() else {"ready": False}
        if not status.get("ready"):
            child.wait()
            why = status.get("error") or f"it stopped (exit code {child.returncode})"
            _say(f"herd: the worker could not start: {why.rstrip('.')}. See {log}.", err=True)
            return EXIT_FAILED
        _say(f"worker ready {opts['host']}:{opts['port']}")
        _say(f"  info port {opts['port'] + 1}; llama.cpp RPC protocol {status['protocol']}")
        for d in status["devices"]:
            offered = f", {size_text(d['offer'])} offered" if d["offer"] else ""
            _say(
                f"  {d['name']}: {d['description']}, {size_text(d['total'])}, "
                f"{size_text(d['free'])} free{offered}"
            )
        if not loopback(opts["host"]):
            _say("  unauthenticated: use only on a trusted network")
        return child.wait() and EXIT_FAILED
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
