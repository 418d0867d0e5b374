"""What llama.cpp's RPC backend costs a reply: layers split over two `herd worker`s on
loopback, against the same model all in this machine's engine.

    python bench/rpc_overhead.py [--tokens 64] [--threads 1] [--skip-big]

Two models: the tests' tiny Maverick-like model, and a Scout-shaped ~1 GB model
(bench/moe_model.py, cached). For each: decode tok/s with everything local, then with the
layers spread over two workers (each serving its CPU; this machine described with little
RAM and each worker offering a bit over a third of the layers, so the plan puts layers on
both). Between the engine and each worker sits a byte-counting relay, so the bytes a token
really sends and receives are measured, from the first token to the last, and printed
beside the planner's estimate (``Plan.network_bytes_per_token``). On loopback the network
costs little; the figure that carries over to a LAN is the bytes per token.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import events as ev  # noqa: E402
from app.core.chat.messages import ChatMessage, Role  # noqa: E402
from app.core.engine.client import EngineClient  # noqa: E402
from app.core.gguf.info import GGUFInfo, read_gguf  # noqa: E402
from app.core.hardware.probe import Hardware  # noqa: E402
from app.core.hardware.workers import Worker, WorkerDevice, ask_worker  # noqa: E402
from app.core.load import LoadRequest, Planned, load_model  # noqa: E402
from app.core.model_wishes import ModelWishes  # noqa: E402
from app.core.paths import AppPaths  # noqa: E402
from app.core.plan.planner import Wishes, make_plan  # noqa: E402
from app.core.settings import LoadSettings, SamplingSettings  # noqa: E402

GiB = 1 << 30
PROMPT = "Tell me a very long story about the sea."


class Relay:
    """127.0.0.1:port -> a worker's RPC port, counting the bytes each way."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.sent = self.received = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self._server.accept()
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, out: bool) -> None:
        try:
            while data := src.recv(1 << 20):
                dst.sendall(data)
                if out:
                    self.sent += len(data)
                else:
                    self.received += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def total(self) -> int:
        return self.sent + self.received


def free_pair() -> int:
    """A port p with p + 1 free too (the worker's RPC and info ports)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def start_worker(home: Path, threads: int, offer: int) -> tuple[subprocess.Popen[str], int]:
    port = free_pair()
    argv = [sys.executable, "-m", "app", "worker", "--port", str(port), "--devices", "CPU",
            "--threads", str(threads), "--memory", f"{offer}B"]  # fmt: skip
    env = {**os.environ, "HERD_HOME": str(home)}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("worker ready"):
        raise SystemExit(f"the worker did not start: {line!r}")
    return proc, port


def run_chat(engine: EngineClient, tokens: int, relays: list[Relay]) -> tuple[float, float]:
    """Decode tok/s, and bytes per decoded token through the relays (0 without relays)."""
    sampling = SamplingSettings(temperature=0.0, max_tokens=tokens, seed=1)
    chat = [ChatMessage(Role.USER, PROMPT)]
    start_bytes, seen = 0, 0
    for event in engine.chat(chat, sampling):
        if isinstance(event, ev.Token) and not seen:
            seen = event.n_tokens
            start_bytes = sum(r.total for r in relays)
        elif isinstance(event, ev.Finished):
            per = (sum(r.total for r in relays) - start_bytes) / max(
                event.generated_tokens - seen, 1
            )
            return event.decode_tok_s, per
        elif isinstance(event, ev.Failed | ev.EngineCrashed):
            raise SystemExit(f"the reply failed: {event.message}")
    raise SystemExit("no reply")


def loaded(engine: EngineClient, request: LoadRequest) -> Planned:
    planned = None
    for event in load_model(engine, request):
        if isinstance(event, Planned):
            planned = event
        elif isinstance(event, ev.Failed | ev.EngineCrashed):
            raise SystemExit(f"the load failed: {event.message}")
    assert planned is not None
    return planned


def bench(path: Path, name: str, tokens: int, threads: int) -> None:
    info = read_gguf(path)
    home = Path(tempfile.mkdtemp(prefix="herd-rpc-bench-"))
    paths = AppPaths.under(home).ensure()
    base = LoadSettings(n_ctx=1024, n_threads=threads)
    wishes = ModelWishes(n_ctx=1024)
    with EngineClient(paths) as engine:
        loaded(engine, LoadRequest(path, wishes, base=base, threads=threads))
        local_tok_s, _ = run_chat(engine, tokens, [])
    hardware, offer = small_machine(info, threads)
    workers = [start_worker(home, threads, offer) for _ in range(2)]
    try:
        relays = [Relay(port) for _, port in workers]
        direct = [ask_worker(f"127.0.0.1:{port}") for _, port in workers]
        relayed = [
            dataclasses.replace(w, endpoint=f"127.0.0.1:{r.port}")
            for w, r in zip(direct, relays, strict=True)
        ]
        runs = []
        for label, asked, watched in (("via relays", relayed, relays), ("direct", direct, [])):
            request = LoadRequest(path, wishes, base=base, hardware=hardware, threads=threads,
                                  workers=tuple(asked))  # fmt: skip
            with EngineClient(paths) as engine:
                plan = loaded(engine, request).plan
                tok_s, per_token = run_chat(engine, tokens, watched)
                buffers = engine.facts.buffers if engine.facts else ()
            runs.append((label, tok_s, per_token, plan, buffers))
        print(f"{name} ({info.file_size / GiB:.2f} GiB, {info.n_layers} layers, {tokens} tokens)")
        print(f"  local                  decode {local_tok_s:7.1f} tok/s")
        for label, tok_s, _, plan, _ in runs:
            print(f"  2 workers, {label:<11} decode {tok_s:7.1f} tok/s  (tensor_split "
                  f"{plan.tensor_split}, n_gpu_layers {plan.n_gpu_layers})")  # fmt: skip
        _, _, per_token, plan, buffers = runs[0]
        estimate = plan.network_bytes_per_token
        print(f"  network bytes per token: measured {per_token:,.0f}, planned {estimate:,.0f} "
              f"({per_token / max(estimate, 1):.2f}x)")  # fmt: skip
        for buffer, kind, size in buffers:
            if buffer.startswith("RPC") and kind == "model":
                print(f"  {buffer} model buffer {size / 2**20:,.1f} MiB")
    finally:
        for proc, _ in workers:
            proc.terminate()
            proc.wait()


def small_machine(info: GGUFInfo, threads: int) -> tuple[Hardware, int]:
    """This machine described with little RAM, and what each worker offers, so that the
    plan fits and puts layers on both workers."""
    total = 16 * GiB
    margin = int(total * 0.05)
    MiB = 1 << 20
    for extra in [*range(1, 64), *range(64, 4096, 8)]:
        hw = Hardware((), total, margin + extra * MiB, threads)
        for frac in (0.3, 0.4, 0.5):
            for compute in (4, 32, 128, 512):
                offer = int(info.file_size * frac) + compute * MiB
                fake = tuple(
                    Worker(
                        f"127.0.0.1:{p}",
                        (WorkerDevice(0, "CPU", "CPU", "cpu", 64 * GiB, 64 * GiB, offer),),
                    )  # fmt: skip
                    for p in (1, 3)
                )
                plan = make_plan(info, hw, Wishes(n_ctx=1024), workers=fake)
                if plan.fits and len(plan.rpc_servers) == 2:
                    return hw, offer
    raise SystemExit("no plan puts layers on both workers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-big", action="store_true", help="only the tiny model")
    args = parser.parse_args()
    from tests.fixtures.tiny_llama4 import make_tiny_llama4

    tiny = Path(tempfile.mkdtemp(prefix="herd-rpc-tiny-")) / "tiny-maverick.gguf"
    make_tiny_llama4(tiny, n_layers=4, n_experts=128, interleave_moe_layer_step=2)
    bench(tiny, "tiny Maverick-like", args.tokens, args.threads)
    if not args.skip_big:
        from bench.moe_model import ensure_model, scaled_scout

        started = time.perf_counter()
        big = ensure_model(scaled_scout())
        print(f"(the ~1 GB model: {big}, ready in {time.perf_counter() - started:.0f} s)")
        bench(big, "Scout-shaped ~1 GB", args.tokens, args.threads)


if __name__ == "__main__":
    main()
