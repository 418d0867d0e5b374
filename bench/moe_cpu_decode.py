"""Decode speed of an MoE whose experts live in RAM, against this machine's memory bandwidth.

    python bench/moe_cpu_decode.py [--quick] [--tokens N] [--runs N] [--direct-like-plan]

An offloaded Llama 4 decodes as fast as the CPU streams its routed experts from RAM. This
writes (once; cached under ~/.cache/herd-bench) a Scout-shaped MoE of about 1 GB in Q4_K_M
(``bench/moe_model.py``: 16 experts, 1 used per token, a shared expert, every layer MoE,
Scout's ratio of expert to dense bytes) and decodes it on the CPU two ways, each in its own
process: through Herd (``EngineClient``, loaded with the planner's settings) and through
llama-cpp-python directly (``llama_cpp.Llama`` with its defaults and the same threads and
context, in a child of this script). Runs are interleaved (herd, direct, herd, direct, ...)
over every thread count from 1 to the CPU count, the planner's included; both sides count
decode speed alike, (tokens - 1) / (last - first token), greedy, same prompt and samplers.
On a shared machine other processes disturb runs (with every core busy, llama.cpp's threads
wait for each other at every graph node): a run during which others took over 10% of the
CPUs is marked BUSY and not counted; rounds go on (up to 3x --runs) until each side has
--runs quiet ones. Figures are medians of the quiet runs; "paired" is the median of
herd/direct within rounds where both were quiet, which a drifting machine disturbs less.

Bytes read per token come from the GGUF's tensor sizes: every tensor but the routed experts
and the token embeddings whole (the output matrix too), one row of the embeddings, and
``n_expert_used / n_experts`` of each MoE layer's routed experts. The bandwidth is one
thread's numpy sum over a 1 GiB array (best of several, before and after the decode runs).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import events as ev  # noqa: E402
from app.core.engine.client import EngineClient  # noqa: E402
from app.core.gguf.info import GGUFInfo, TensorGroup, read_gguf  # noqa: E402
from app.core.hardware.probe import probe_hardware  # noqa: E402
from app.core.paths import AppPaths  # noqa: E402
from app.core.plan.planner import Wishes, make_plan  # noqa: E402
from app.core.settings import LoadSettings, SamplingSettings  # noqa: E402
from bench.moe_model import DEFAULT_CACHE, SCOUT, ensure_model, scaled_scout  # noqa: E402

PROMPT = "The herd walks up the hill in the morning and rests by the river in the evening."
DECODE_TARGET = 0.97  # herd / direct
THREADS_TARGET = 0.95  # herd at the planner's threads / herd at the best thread count
QUIET = 0.10  # a run during which other processes took more of the CPUs is not counted
MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class Run:
    """One reply: its decode speed, tokens, text and CPU seconds of every process involved."""

    tok_s: float
    n_tokens: int
    text: str
    cpu_s: float
    others: float = 0.0  # share of all CPUs that other processes took meanwhile


# -- the two sides ---------------------------------------------------------------------
class HerdSide:
    """Herd's engine process with the model loaded at ``settings``."""

    def __init__(self, path: Path, settings: LoadSettings, home: Path) -> None:
        self.engine = EngineClient(AppPaths.under(home).ensure())
        for event in self.engine.load(path, settings):
            if isinstance(event, ev.Failed | ev.EngineCrashed):
                self.close()
                raise SystemExit(f"herd could not load the model: {event.message}")
        assert self.engine.pid is not None
        self.proc = psutil.Process(self.engine.pid)

    def run(self, sampling: SamplingSettings) -> Run:
        cpu = time.process_time() + sum(self.proc.cpu_times()[:2])
        for event in self.engine.complete(PROMPT, sampling):
            if isinstance(event, ev.Finished):
                cpu = time.process_time() + sum(self.proc.cpu_times()[:2]) - cpu
                return Run(event.decode_tok_s, event.generated_tokens, event.text, cpu)
            if isinstance(event, ev.Failed | ev.EngineCrashed):
                raise SystemExit(f"herd failed: {event.message}")
        raise SystemExit("herd: the reply ended without Finished")

    def close(self) -> None:
        self.engine.shutdown()


class DirectSide:
    """llama-cpp-python in a child process (this script with ``--direct-child``)."""

    def __init__(self, path: Path, threads: int, n_ctx: int, log: Path, extra: dict) -> None:
        self.log = log
        argv = [sys.executable, __file__, "--direct-child", str(path), str(threads), str(n_ctx)]
        argv += [json.dumps(extra)]
        with log.open("wb") as err:
            self.child = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
            )
        self.proc = psutil.Process(self.child.pid)
        self._reply()  # {"ready": true} once loaded

    def _reply(self) -> dict[str, Any]:
        assert self.child.stdout is not None
        line = self.child.stdout.readline()
        if not line:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise SystemExit("direct child died:\n" + "\n".join(tail))
        return json.loads(line)

    def run(self, sampling: SamplingSettings) -> Run:
        assert self.child.stdin is not None
        cpu = sum(self.proc.cpu_times()[:2])
        self.child.stdin.write(json.dumps(dataclasses.asdict(sampling)) + "\n")
        self.child.stdin.flush()
        r = self._reply()
        return Run(r["tok_s"], r["n"], r["text"], sum(self.proc.cpu_times()[:2]) - cpu)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            assert self.child.stdin is not None
            self.child.stdin.close()
        try:
            self.child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()


def direct_child(path: str, threads: int, n_ctx: int, extra: dict[str, Any]) -> int:
    """The child: load with llama-cpp-python's defaults (but ``extra``), answer per request."""
    import llama_cpp

    threads_kw = {"n_threads": threads, "n_threads_batch": threads}
    llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, verbose=False, **threads_kw, **extra)
    prompt = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        s = SamplingSettings(**json.loads(line))
        llm.set_seed(s.seed)
        tokens: list[int] = []
        first = last = 0.0
        samplers = {"top_k": s.top_k, "top_p": s.top_p, "min_p": s.min_p}
        for tok in llm.generate(
            prompt, temp=s.temperature, repeat_penalty=s.repeat_penalty, **samplers
        ):
            last = time.perf_counter()
            first = first or last
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
                break
            tokens.append(tok)
            if len(tokens) >= s.max_tokens:
                break
        n = len(tokens)
        tok_s = (n - 1) / (last - first) if n > 1 and last > first else 0.0
        text = llm.detokenize(tokens).decode("utf-8", errors="replace")
        print(json.dumps({"tok_s": tok_s, "n": n, "text": text}), flush=True)
    llm.close()
    return 0


# -- figures ---------------------------------------------------------------------------
def bytes_per_token(info: GGUFInfo) -> int:
    """Weight bytes one decoded token reads (one routed expert per MoE layer, one embedding)."""
    tied = not any(t.name == "output.weight" for t in info.tensors)
    total = 0.0
    for t in info.tensors:
        if t.group is TensorGroup.ROUTED_EXPERTS:
            total += t.n_bytes * info.n_experts_used / info.n_experts
        elif t.name == "token_embd.weight" and not tied:
            total += t.n_bytes / t.shape[-1]  # one row of n_vocab
        else:
            total += t.n_bytes
    return round(total)


def read_bandwidth(repeats: int, gib: float = 1.0) -> float:
    """Bytes per second of one thread summing a ``gib`` GiB array (the best of ``repeats``)."""
    data = np.ones(int(gib * (1 << 30)) // 8, dtype=np.float64)  # written, so paged in
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - started)
    return data.nbytes / best


def _busy_s() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0)


def wait_until_idle(max_s: float, below: float = 0.15) -> None:
    """Wait (at most ``max_s``) until other processes leave the CPUs nearly idle."""
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline and psutil.cpu_percent(interval=0.5) / 100 > below:
        pass


def measured(side: HerdSide | DirectSide, sampling: SamplingSettings, idle_wait: float) -> Run:
    """One run of ``side`` after waiting for quiet, with the CPU share others took meanwhile."""
    wait_until_idle(idle_wait)
    busy, started = _busy_s(), time.perf_counter()
    run = side.run(sampling)
    wall = (time.perf_counter() - started) * (os.cpu_count() or 1)
    return dataclasses.replace(run, others=max(_busy_s() - busy - run.cpu_s, 0.0) / wall)


def quiet(runs: list[Run]) -> list[Run]:
    """The runs other processes left alone (under QUIET of the CPUs)."""
    return [r for r in runs if r.others < QUIET]


def counted(runs: list[Run]) -> list[Run]:
    """The quiet runs when there are at least two, else all (the figure is then noisy)."""
    calm = quiet(runs)
    return calm if len(calm) >= min(2, len(runs)) else runs


def median(runs: list[Run], field: str = "tok_s") -> float:
    """The median of ``field`` over the counted runs."""
    return statistics.median(getattr(r, field) for r in counted(runs))


def paired(herd: list[Run], direct: list[Run]) -> float:
    """The median of herd/direct within each round where both runs were quiet (0: none)."""
    pairs = [
        h.tok_s / d.tok_s
        for h, d in zip(herd, direct, strict=True)
        if max(h.others, d.others) < QUIET and d.tok_s > 0
    ]
    return statistics.median(pairs) if pairs else 0.0


def print_round(n: int, threads: int, h: Run, d: Run, n_tokens: int) -> None:
    note = "" if h.n_tokens == d.n_tokens == n_tokens else "  TOKEN COUNTS DIFFER"
    sides = []
    for name, r in (("herd", h), ("direct", d)):
        busy = " BUSY" if r.others >= QUIET else ""
        sides.append(
            f"{name} {r.tok_s:6.1f} tok/s ({r.cpu_s / max(r.n_tokens, 1) * 1e3:5.1f} ms CPU/token,"
            f" others {r.others:4.0%}{busy})"
        )
    print(f"  round {n} threads {threads}: {' | '.join(sides)}{note}", flush=True)


def report(
    threads: list[int],
    t_plan: int,
    herd: dict[int, list[Run]],
    direct: dict[int, list[Run]],
    bpt: int,
    bandwidth: float,
) -> None:
    """The summary table, the targets, and the one-line result (last)."""
    print(f"bytes read per token: {bpt / MiB:.1f} MiB ({bpt / 1e6:.1f} MB)")
    print(
        f"bandwidth: {bandwidth / 1e9:.1f} GB/s (best, numpy, 1 thread); bound "
        f"{bandwidth / bpt:.1f} tok/s"
    )
    print(
        "threads  herd tok/s  direct tok/s  herd/direct  paired  herd GB/s  % of bound  same text"
        "  quiet runs (herd, direct)"
    )
    for t in threads:
        h, d = median(herd[t]), median(direct[t])
        same = all(a.text == b.text for a, b in zip(herd[t], direct[t], strict=True))
        n_quiet = f"{len(quiet(herd[t]))}, {len(quiet(direct[t]))} of {len(herd[t])}"
        noisy = any(len(counted(runs)) > len(quiet(runs)) for runs in (herd[t], direct[t]))
        print(
            f"{t:>7}  {h:10.1f}  {d:12.1f}  {h / d:10.2f}x  {paired(herd[t], direct[t]):5.2f}x"
            f"  {h * bpt / 1e9:9.2f}  "
            f"{h * bpt / bandwidth * 100:9.0f}%  {'yes' if same else 'NO':>9}  {n_quiet}"
            f"{' (all runs counted: NOISY)' if noisy else ''}{' (plan)' if t == t_plan else ''}"
        )
    x, y = median(herd[t_plan]), median(direct[t_plan])
    best = max(threads, key=lambda t: median(herd[t]))
    z = x * bpt / bandwidth * 100
    ratio_ok = x / y >= DECODE_TARGET
    threads_ok = x >= THREADS_TARGET * median(herd[best])
    cpu_h, cpu_d = median(herd[t_plan], "cpu_s"), median(direct[t_plan], "cpu_s")
    print(
        f"CPU per reply at {t_plan} threads: herd {cpu_h * 1e3:.0f} ms (app + engine), direct "
        f"{cpu_d * 1e3:.0f} ms ({cpu_h / cpu_d:.2f}x)"
    )
    print(
        f"targets: herd/direct >= {DECODE_TARGET:.2f}x: {x / y:.2f}x (paired "
        f"{paired(herd[t_plan], direct[t_plan]):.2f}x) "
        f"{'met' if ratio_ok else 'MISSED'}; planner's threads within "
        f"{1 - THREADS_TARGET:.0%} of the best: {x / median(herd[best]):.1%} of best "
        f"{'met' if threads_ok else 'MISSED'}"
    )
    print(
        f"moe_cpu_decode: herd {x:.1f} tok/s, direct {y:.1f} tok/s ({x / y:.2f} x), "
        f"{z:.0f}% of the bandwidth bound, threads {t_plan} (best {best})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="32 tokens, 2 runs: a smoke run")
    parser.add_argument("--tokens", type=int, help="tokens per reply (default 128)")
    parser.add_argument("--runs", type=int, help="quiet runs per side (default 7)")
    parser.add_argument("--ctx", type=int, default=4096, help="context size (default 4096)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="model cache folder")
    parser.add_argument(
        "--direct-like-plan",
        action="store_true",
        help="load the direct side with the plan's flash_attn, swa_full and batch sizes too",
    )
    parser.add_argument(
        "--idle-wait", type=float, help="seconds to wait for quiet CPUs before a run (default 20)"
    )
    args = parser.parse_args()
    n_tokens = args.tokens or (32 if args.quick else 128)
    n_runs = args.runs or (2 if args.quick else 7)
    bw_repeats = 3 if args.quick else 7
    idle_wait = args.idle_wait if args.idle_wait is not None else (5.0 if args.quick else 20.0)

    shape = scaled_scout()
    path = ensure_model(shape, args.cache)
    info = read_gguf(path)
    bpt = bytes_per_token(info)
    plan = make_plan(info, probe_hardware(), Wishes(n_ctx=args.ctx))
    load = plan.to_load_settings()
    cpus = os.cpu_count() or 1
    threads = sorted({plan.n_threads, *range(1, cpus + 1)})
    sampling = SamplingSettings(temperature=0.0, max_tokens=n_tokens, seed=1)
    extra: dict[str, Any] = {}
    if args.direct_like_plan:
        keys = ("flash_attn", "swa_full", "n_batch", "n_ubatch", "use_mmap")
        extra = {key: getattr(load, key) for key in keys}
    print(
        f"model: {path.name}, {info.n_bytes / 1e9:.2f} GB {info.file_type}, {shape.n_layers} "
        f"layers, n_embd {shape.n_embd}, n_ff_exp {shape.n_ff_exp}, {shape.n_head}/"
        f"{shape.n_head_kv} heads, vocab {shape.n_vocab}, {shape.n_experts} experts "
        f"({shape.n_expert_used} used) + shared; expert:dense params "
        f"{shape.expert_dense_ratio():.2f} (Scout {SCOUT.expert_dense_ratio():.2f})",
        flush=True,
    )
    print(
        f"plan: n_ctx {load.n_ctx}, {plan.n_threads} threads, flash_attn {load.flash_attn}, "
        f"n_batch {load.n_batch}, mmap {load.use_mmap}; predicts {plan.predicted_decode_tok_s:.1f}"
        f" tok/s; {cpus} CPUs; {n_runs} runs x {n_tokens} tokens, greedy; direct: "
        f"llama-cpp-python defaults{f' but {extra}' if extra else ''}",
        flush=True,
    )
    wait_until_idle(idle_wait)
    bandwidth = read_bandwidth(bw_repeats)
    print(f"read bandwidth (numpy, 1 thread): {bandwidth / 1e9:.1f} GB/s", flush=True)

    herd_home = args.cache / "herd-home"  # keeps the engine self-check's verdict between runs
    herd: dict[int, list[Run]] = {t: [] for t in threads}
    direct: dict[int, list[Run]] = {t: [] for t in threads}
    with tempfile.TemporaryDirectory() as logs, contextlib.ExitStack() as stack:
        sides: dict[int, tuple[HerdSide, DirectSide]] = {}
        for t in threads:
            h = HerdSide(path, dataclasses.replace(load, n_threads=t), herd_home)
            stack.callback(h.close)
            d = DirectSide(path, t, load.n_ctx, Path(logs) / f"direct-{t}.log", extra)
            stack.callback(d.close)
            sides[t] = (h, d)
            h.run(sampling)  # warm up: page in the weights, start the thread pools
            d.run(sampling)
        rounds = 0
        # a run others disturbed does not count: more rounds, up to 3x, until enough are quiet
        while rounds < 3 * n_runs and (
            rounds < n_runs
            or any(len(quiet(runs)) < n_runs for runs in [*herd.values(), *direct.values()])
        ):
            rounds += 1
            for t, (h, d) in sides.items():
                herd[t].append(measured(h, sampling, idle_wait))
                direct[t].append(measured(d, sampling, idle_wait))
                print_round(rounds, t, herd[t][-1], direct[t][-1], n_tokens)
    wait_until_idle(idle_wait)
    bandwidth = max(bandwidth, read_bandwidth(bw_repeats))
    report(threads, plan.n_threads, herd, direct, bpt, bandwidth)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--direct-child":
        argv = sys.argv[2:]
        sys.exit(direct_child(argv[0], int(argv[1]), int(argv[2]), json.loads(argv[3])))
    sys.exit(main())
