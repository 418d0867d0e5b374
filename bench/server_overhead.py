"""What `herd serve` costs: decode speed and time to first token through the server
(streaming, the real ``openai`` client) against the engine client `herd chat` uses, on the
same model, settings, prompt and sampling.

    python bench/server_overhead.py [--model GGUF] [--rounds 5] [--max-tokens 128] [--threads 1]

Both sides are one engine process each, loaded with the same settings; runs alternate
(client, server, client, server ...) so only one computes at a time. Each round has a new
first line, so the prompt is evaluated afresh. Times are taken where a caller sees them:
from the request to the first piece of text, and from the first to the last piece (decode
tok/s = (tokens - 1) / that), the tokens counted by the engine. The target (issue 18): at
least 0.97x the client's decode speed, and at most 20 ms more to the first token.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.core import events as ev  # noqa: E402
from app.core.chat.messages import ChatMessage, Role  # noqa: E402
from app.core.demo import demo_model_path  # noqa: E402
from app.core.engine.client import EngineClient  # noqa: E402
from app.core.paths import AppPaths  # noqa: E402
from app.core.settings import LoadSettings, SamplingSettings  # noqa: E402

PROMPT = "Write a short story about a llama who learns to paint. Round {n}."


def via_client(client: EngineClient, n: int, max_tokens: int) -> tuple[float, float, int]:
    """(time to first text, decode tok/s, tokens) through EngineClient, as `herd chat`."""
    messages = [ChatMessage(Role.USER, PROMPT.format(n=n))]
    sampling = SamplingSettings(temperature=0.0, max_tokens=max_tokens, seed=1)
    started = time.perf_counter()
    first = last = 0.0
    done: ev.Finished | None = None
    for event in client.chat(messages, sampling):
        now = time.perf_counter()
        if isinstance(event, ev.Token) and event.text:
            first = first or now
            last = now
        elif isinstance(event, ev.Finished):
            done = event
    assert done is not None, "no reply"
    tokens = done.generated_tokens
    return first - started, (tokens - 1) / max(last - first, 1e-9), tokens


def via_server(base_url: str, n: int, max_tokens: int) -> tuple[float, float, int]:
    """The same through `herd serve`, streaming, with the openai client."""
    from openai import OpenAI

    api = OpenAI(base_url=base_url, api_key="unused")
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    stream = api.chat.completions.create(
        model="herd",
        messages=[{"role": "user", "content": PROMPT.format(n=n)}],
        max_tokens=max_tokens,
        temperature=0.0,
        seed=1,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        now = time.perf_counter()
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or now
            last = now
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return first - started, (tokens - 1) / max(last - first, 1e-9), tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a .gguf (default: the demo model)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    model = Path(args.model) if args.model else demo_model_path()
    if model is None:
        print("no model: install the demo or pass --model")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HERD_HOME": str(Path(tmp) / "server")}
        command = [sys.executable, "-m", "app", "serve", str(model), "--port", "0",
                   "--ctx", "2048", "--threads", str(args.threads)]  # fmt: skip
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
        client = EngineClient(AppPaths.under(Path(tmp) / "client").ensure())
        try:
            assert server.stdout is not None
            line = server.stdout.readline().strip()
            if not line.startswith("serving "):
                print(f"the server did not start: {line!r}")
                return 1
            base_url = line.removeprefix("serving ")
            loaded = list(client.load(model, LoadSettings(n_ctx=2048, n_threads=args.threads)))
            assert isinstance(loaded[-1], ev.Loaded), loaded[-1]
            via_client(client, -1, 8)  # warm both up
            via_server(base_url, -1, 8)
            rows: dict[str, list[tuple[float, float, int]]] = {"client": [], "server": []}
            for n in range(args.rounds):
                rows["client"].append(via_client(client, n, args.max_tokens))
                rows["server"].append(via_server(base_url, n, args.max_tokens))
        finally:
            client.shutdown()
            server.terminate()
            server.wait(30)
    medians = {}
    for side, runs in rows.items():
        ttft = statistics.median(r[0] for r in runs) * 1000
        tok_s = statistics.median(r[1] for r in runs)
        tokens = [r[2] for r in runs]
        medians[side] = (ttft, tok_s)
        print(f"{side:<7} first text {ttft:7.1f} ms   decode {tok_s:7.1f} tok/s   tokens {tokens}")
    ratio = medians["server"][1] / medians["client"][1]
    extra = medians["server"][0] - medians["client"][0]
    print(f"server/client decode {ratio:.3f}x (target >= 0.97), first text {extra:+.1f} ms "
          f"(target <= +20 ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
