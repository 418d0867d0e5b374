"""The process behind ``herd worker``: llama.cpp's RPC server on this machine's devices.

Started by :mod:`app.worker_cli` as ``python -m app.core.engine.rpc_server LOGFILE JSON``
(llama.cpp may only run on the engine's side). It points fds 1 and 2 at the log file
(llama.cpp prints each connection there), opens Herd's info port (PORT + 1, see
:mod:`app.core.hardware.workers`), and writes one JSON line on the pipe that was stdout
once llama.cpp accepts connections: what it serves, or why it cannot.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from typing import IO, Any

from app.core.errors import HerdError
from app.core.hardware.workers import InfoServer

READY_TIMEOUT_S = 20.0
PROTOCOL = "7.0.0"  # ggml-rpc.h of llama-cpp-python 0.3.36


def served_devices(names: list[str], memory: int) -> list[dict[str, Any]]:
    """The devices to serve (default: the GPUs, else the CPU), as the info port says them.

    ``memory`` (bytes, 0: none) caps what each device offers, for a machine that must keep
    memory for other work: the planner plans at most that much there.

    Raises:
        HerdError: a named device does not exist here.
    """
    from app.core.engine import llama_devices  # llama.cpp: only once this process serves

    found = llama_devices.backend_devices()
    by_name = {name: (desc, kind, free, total) for name, desc, kind, free, total in found}
    if not names:
        names = [n for n, _, kind, _, _ in found if kind in (1, 2)] or ["CPU"]
    out: list[dict[str, Any]] = []
    for name in names:
        if name not in by_name:
            known = ", ".join(by_name)
            raise HerdError(f"There is no device {name!r} here.", f"This machine has: {known}.")
        desc, kind, free, total = by_name[name]
        out.append(
            {
                "index": len(out),
                "name": name,
                "description": desc,
                "kind": "cpu" if kind == 0 else "gpu",
                "total": int(total),
                "free": int(free),
                "offer": memory,
            }
        )
    return out


def _wait_listening(host: str, port: int, out: IO[bytes], info: dict[str, Any]) -> None:
    """Say ready once llama.cpp accepts connections (the connection is closed at once)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                pass
        except OSError:
            time.sleep(0.05)
            continue
        out.write(json.dumps({"ready": True, **info}).encode() + b"\n")
        out.flush()
        return
    out.write(json.dumps({"ready": False, "error": "llama.cpp did not start listening"}).encode())
    out.flush()


def _exit_with_parent() -> None:
    """End when ``herd worker`` does (its pipe on our stdin closes): no orphan keeps serving."""
    sys.stdin.buffer.read()
    os._exit(0)


def _check_free(host: str, port: int) -> None:
    """Fail early when the RPC port is taken (else the ready check would meet the other)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def main(argv: list[str]) -> int:
    """``rpc_server.py LOGFILE JSON`` with host, port, devices, threads, cache, memory."""
    log_path, options = argv[1], json.loads(argv[2])
    status = os.fdopen(os.dup(1), "wb", buffering=0)
    log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the process
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = open(log.fileno(), "w", buffering=1, closefd=False)  # noqa: SIM115
    host, port = str(options["host"]), int(options["port"])
    from app.core.engine import backends, llama_devices  # llama.cpp: the engine side, lazily

    try:
        backends.load_backends()  # a portable build's CPU variant and GPU modules (bundles)
        served = served_devices(list(options.get("devices", [])), int(options.get("memory", 0)))
        pointers = [llama_devices.local_device(d["name"]) for d in served]
        llama_devices.require_rpc()
        _check_free(host, port)
        info = {"protocol": PROTOCOL, "devices": served, "threads": int(options["threads"])}
        InfoServer((host, port + 1), info).serve_in_background()
    except (HerdError, OSError) as exc:
        text = exc.one_line() if isinstance(exc, HerdError) else f"ports {port}, {port + 1}: {exc}"
        status.write(json.dumps({"ready": False, "error": text}).encode() + b"\n")
        return 1
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    connect_to = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    threading.Thread(
        target=_wait_listening, args=(connect_to, port, status, info), daemon=True
    ).start()
    llama_devices.start_server(
        f"{host}:{port}",
        pointers,
        threads=int(options["threads"]),
        cache_dir=options.get("cache") or None,
    )
    # start_server returns only when it could not listen (llama.cpp said why in the log)
    status.write(json.dumps({"ready": False, "error": f"cannot listen on {host}:{port}"}).encode())
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
