"""Other machines' devices, served by ``herd worker`` through llama.cpp's RPC backend.

A worker serves llama.cpp's RPC protocol on ``HOST:PORT``. That protocol (7.0.0) says how
many devices there are and their free memory, but not what they are (an RPC device's
description is its endpoint), nor a memory budget, and its server takes one client at a
time, so a planner asking while an engine is connected would wait. So ``herd worker``
also answers on ``PORT + 1`` (the info port, Herd's own, a few lines of JSON): what it
serves (names, descriptions, memory, the budget it was given) and a link test (pings for
the round-trip time, a few MB for the throughput). Both ports carry no secrets and check
none: llama.cpp's RPC is unauthenticated, so workers belong on a trusted LAN or behind an
SSH tunnel.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import HerdError

logger = logging.getLogger(__name__)

DEFAULT_PORT = 50052
INFO_MAGIC = b"HERD-WORKER 1"
ASK_TIMEOUT_S = 3.0  # a worker that does not answer the info port by then is left out
PINGS = 5
PROBE_BYTES = 4 << 20  # the throughput sample: a few MB
_MAX_PROBE = 64 << 20


class WorkerError(HerdError):
    """A worker that cannot be reached, or an endpoint that is not HOST:PORT."""


@dataclass(frozen=True, slots=True)
class WorkerDevice:
    """One device a worker serves (its index is llama.cpp's device number on that server)."""

    index: int
    name: str  # the worker's own llama.cpp name: "CPU", "CUDA0", "Metal"
    description: str
    kind: str  # "cpu" or "gpu"
    total_bytes: int
    free_bytes: int
    offer_bytes: int = 0  # ``herd worker --memory``: at most this much is planned (0: no cap)


@dataclass(frozen=True, slots=True)
class Worker:
    """A ``herd worker`` as the planner sees it: its devices and the link to it."""

    endpoint: str  # "HOST:PORT" of llama.cpp's RPC server
    devices: tuple[WorkerDevice, ...]
    rtt_s: float = 0.0  # round trip of a small message
    bytes_per_s: float = 0.0  # measured throughput towards the worker; 0: unknown
    protocol: str = ""  # llama.cpp's RPC protocol version, e.g. "7.0.0"

    @property
    def host(self) -> str:
        """The host part of the endpoint."""
        return split_endpoint(self.endpoint)[0]

    def device_label(self, device: WorkerDevice) -> str:
        """llama.cpp's buffer name for a device of this worker: ``RPC0[10.0.0.2:50052]``."""
        return f"RPC{device.index}[{self.endpoint}]"

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (also a recorded worker file's entries)."""
        return {
            "endpoint": self.endpoint,
            "protocol": self.protocol,
            "rtt_ms": round(self.rtt_s * 1000, 3),
            "mb_per_s": round(self.bytes_per_s / 1e6, 1),
            "devices": [
                {
                    "index": d.index,
                    "name": d.name,
                    "description": d.description,
                    "kind": d.kind,
                    "total": d.total_bytes,
                    "free": d.free_bytes,
                    "offer": d.offer_bytes,
                }
                for d in self.devices
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Worker:
        """Inverse of :meth:`to_json`.

        Raises:
            WorkerError: a field is missing or of the wrong type.
        """
        try:
            devices = tuple(
                WorkerDevice(
                    int(d.get("index", i)),
                    str(d["name"]),
                    str(d.get("description", d["name"])),
                    str(d.get("kind", "cpu" if d["name"] == "CPU" else "gpu")),
                    int(d["total"]),
                    int(d["free"]),
                    int(d.get("offer", 0)),
                )
                for i, d in enumerate(data["devices"])
            )
            endpoint = str(data["endpoint"])
            split_endpoint(endpoint)
            return cls(
                endpoint,
                devices,
                float(data.get("rtt_ms", 0.0)) / 1000,
                float(data.get("mb_per_s", 0.0)) * 1e6,
                str(data.get("protocol", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WorkerError(f"A worker description is not readable: {exc!r}.") from None


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``("10.0.0.2", 50052)`` from ``"10.0.0.2:50052"`` (a port is required).

    Raises:
        WorkerError: not HOST:PORT with a port from 1 to 65534.
    """
    host, sep, port = endpoint.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65535:
        raise WorkerError(
            f"{endpoint!r} is not a worker address.",
            "Write HOST:PORT, e.g. 192.168.1.20:50052 (what `herd worker` printed).",
        )
    return host.strip("[]"), int(port)


def parse_endpoints(text: str) -> tuple[str, ...]:
    """Endpoints from ``--rpc HOST:PORT[,HOST:PORT...]``, in order, without repeats.

    Raises:
        WorkerError: one of them is not HOST:PORT.
    """
    out: list[str] = []
    for part in text.split(","):
        if part.strip():
            host, port = split_endpoint(part)
            if f"{host}:{port}" not in out:
                out.append(f"{host}:{port}")
    return tuple(out)


def read_recorded(path: Path) -> tuple[Worker, ...]:
    """Workers recorded in a JSON file (a list of :meth:`Worker.to_json` entries).

    Raises:
        WorkerError: the file is missing or not such a list.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkerError(f"Cannot read the worker list {path}: {exc}.") from None
    if not isinstance(data, list):
        raise WorkerError(f"{path} is not a list of workers.")
    return tuple(Worker.from_json(entry) for entry in data)


# --- the info port (the worker's side) ----------------------------------------------------


class _InfoHandler(socketserver.StreamRequestHandler):
    """One request per connection: ``info``, ``ping`` (repeated) or ``bulk N``."""

    timeout = 30.0

    def handle(self) -> None:
        server = self.server
        assert isinstance(server, InfoServer)
        for raw in self.rfile:
            words = raw.decode("ascii", errors="replace").split()
            if len(words) < 2 or words[0].encode() + b" " + words[1].encode() != INFO_MAGIC:
                return
            verb = words[2] if len(words) > 2 else ""
            if verb == "info":
                self.wfile.write(json.dumps(server.info).encode() + b"\n")
            elif verb == "ping":
                self.wfile.write(b"pong\n")
            elif verb == "bulk" and len(words) > 3 and words[3].isdigit():
                self._bulk(min(int(words[3]), _MAX_PROBE))
            else:
                return
            self.wfile.flush()

    def _bulk(self, n: int) -> None:
        """Read ``n`` bytes from the client (its upload), then say so."""
        left = n
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)
        self.wfile.write(b"done\n")


class InfoServer(socketserver.ThreadingTCPServer):
    """The worker's info port: what it serves, and the link test."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], info: dict[str, Any]) -> None:
        super().__init__(address, _InfoHandler)
        self.info = info

    def serve_in_background(self) -> threading.Thread:
        """Serve on a daemon thread (the RPC server holds the main one)."""
        thread = threading.Thread(target=self.serve_forever, name="herd-info", daemon=True)
        thread.start()
        return thread


# --- the info port (the planner's side) ---------------------------------------------------


def ask_worker(
    endpoint: str, *, timeout: float = ASK_TIMEOUT_S, probe: int = PROBE_BYTES
) -> Worker:
    """What the worker at ``endpoint`` serves, with the link measured.

    Round-trip time: the median of a few pings. Throughput: ``probe`` bytes sent to the
    worker, timed to its answer, less one round trip.

    Raises:
        WorkerError: no answer within ``timeout`` seconds, or not a Herd worker.
    """
    host, port = split_endpoint(endpoint)
    try:
        with socket.create_connection((host, port + 1), timeout=timeout) as sock:
            sock.settimeout(timeout)
            rfile = sock.makefile("rb")
            sock.sendall(INFO_MAGIC + b" info\n")
            info = json.loads(rfile.readline() or b"null")
            times = []
            for _ in range(PINGS):
                start = time.perf_counter()
                sock.sendall(INFO_MAGIC + b" ping\n")
                if rfile.readline() != b"pong\n":
                    raise OSError("no pong")
                times.append(time.perf_counter() - start)
            rtt = sorted(times)[len(times) // 2]
            rate = 0.0
            if probe > 0:
                payload = bytes(probe)
                start = time.perf_counter()
                sock.sendall(INFO_MAGIC + b" bulk %d\n" % probe)
                sock.sendall(payload)
                if rfile.readline() != b"done\n":
                    raise OSError("no answer to the throughput probe")
                rate = probe / max(time.perf_counter() - start - rtt, 1e-6)
    except (OSError, ValueError) as exc:
        raise WorkerError(
            f"The worker {endpoint} does not answer ({exc}).",
            f"Start `herd worker` there, and check that ports {port} and {port + 1} are "
            "reachable from here.",
        ) from None
    if not isinstance(info, dict):
        raise WorkerError(f"{endpoint} answered, but not as a Herd worker.")
    worker = Worker.from_json({**info, "endpoint": f"{host}:{port}"})
    return Worker(worker.endpoint, worker.devices, rtt, rate, worker.protocol)


def ask_workers(
    endpoints: Sequence[str], *, timeout: float = ASK_TIMEOUT_S
) -> tuple[tuple[Worker, ...], tuple[str, ...]]:
    """The workers that answer, and a sentence for each one that does not."""
    found: list[Worker] = []
    missing: list[str] = []
    for endpoint in endpoints:
        try:
            found.append(ask_worker(endpoint, timeout=timeout))
        except WorkerError as exc:
            logger.warning("%s", exc.user_message)
            missing.append(exc.user_message)
    return tuple(found), tuple(missing)


def answering(endpoints: Sequence[str], *, timeout: float = 2.0) -> tuple[list[str], list[str]]:
    """Which workers answer a ping on the info port within ``timeout`` (and which do not)."""
    alive: list[str] = []
    silent: list[str] = []
    for endpoint in endpoints:
        try:
            host, port = split_endpoint(endpoint)
            with socket.create_connection((host, port + 1), timeout=timeout) as sock:
                sock.settimeout(timeout)
                sock.sendall(INFO_MAGIC + b" ping\n")
                ok = sock.makefile("rb").readline() == b"pong\n"
        except (OSError, WorkerError):
            ok = False
        (alive if ok else silent).append(endpoint)
    return alive, silent
