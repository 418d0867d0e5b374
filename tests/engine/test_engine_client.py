"""EngineClient against the real engine process, on real GGUF files.

Every test starts its own engine (about 0.3 s) so a kill or an abort in one test cannot
touch another; the ``client`` fixture shuts it down and checks that the process is gone.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core import events as ev
from app.core.chat.llama4_format import render_llama4
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.prompt_format import PromptFormat, PromptFormatKind
from app.core.engine.client import EngineClient
from app.core.gguf.info import read_gguf
from app.core.jobs import CancelToken
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings
from tests.fixtures.tiny_llama4 import SPECIAL_TOKENS, tiny_vocab

# One thread: ggml's threads spin at a barrier after every op, so with two threads on a
# two-core machine that is busy elsewhere (a parallel test run, a CI neighbour) one decode
# can take a whole second; a single thread never waits for another.
SETTINGS = LoadSettings(n_ctx=512, n_threads=1)
SHORT = SamplingSettings(max_tokens=16, seed=1234)
LONG = SamplingSettings(max_tokens=4000, seed=1234)
GREETING = [ChatMessage(Role.USER, "Hello!")]
STORY = [
    ChatMessage(Role.SYSTEM, "You are a storyteller. Your stories are long and detailed."),
    ChatMessage(Role.USER, "Tell me a long story about a llama who climbs a mountain."),
]
STOP_LATENCY_S = 0.100  # the promise: no token later than this after Stop ...
CI_SLACK_S = 0.150  # ... plus room for a busy CI machine


# -- helpers -------------------------------------------------------------------------
@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "home")


@pytest.fixture
def client(paths: AppPaths) -> Iterator[EngineClient]:
    engine = EngineClient(paths)
    yield engine
    pid = engine.pid
    engine.shutdown()
    assert not engine.alive
    if pid is not None:
        assert not _pid_exists(pid)
    if paths.engine_log.exists():  # a clean exit, not an abort in Python's finalization
        assert "Fatal Python error" not in paths.engine_log.read_text(errors="replace")


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _run(job: Iterable[Any]) -> list[Any]:
    events = list(job)
    assert events, "a job must end with a terminal event"
    return events


def _load(client: EngineClient, model: Path, **kwargs: Any) -> ev.ModelFacts:
    events = _run(client.load(model, SETTINGS, **kwargs))
    assert isinstance(events[-1], ev.Loaded), events[-1]
    return events[-1].facts


def _finished(events: list[Any]) -> ev.Finished:
    assert isinstance(events[-1], ev.Finished), events[-1]
    assert all(isinstance(e, ev.Token) for e in events[:-1]), events
    return events[-1]


def _tokens(events: list[Any]) -> list[ev.Token]:
    return [e for e in events if isinstance(e, ev.Token)]


MODELS = {
    # fixture: (llama.cpp's description, architecture, prompt format kind)
    "tiny_scout": ("17Bx16E (Scout)", "llama4", PromptFormatKind.LLAMA4),
    "tiny_maverick": ("17Bx128E (Maverick)", "llama4", PromptFormatKind.LLAMA4),
    "smollm2_gguf": ("", "llama", PromptFormatKind.MODEL_TEMPLATE),
}


# -- 1. load -----------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", list(MODELS))
def test_load_reports_progress_then_facts(
    client: EngineClient, fixture: str, request: pytest.FixtureRequest
) -> None:
    model: Path = request.getfixturevalue(fixture)
    description, arch, kind = MODELS[fixture]
    events = _run(client.load(model, SETTINGS))
    # a new machine (a fresh home) is checked once, before its first load, and says so
    assert isinstance(events[0], ev.Notice) and "Checking how llama.cpp runs" in events[0].message
    events = events[1:]

    progress, loaded = events[:-1], events[-1]
    assert isinstance(loaded, ev.Loaded)
    assert len(progress) >= 2 and all(isinstance(e, ev.Progress) for e in progress)
    fractions = [e.fraction for e in progress]
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(set(fractions)), "fractions must strictly increase"
    assert fractions[-1] == 1.0

    facts = loaded.facts
    assert client.facts == facts
    assert description in facts.description
    assert facts.architecture == arch
    assert facts.path == str(model)
    assert facts.n_ctx == SETTINGS.n_ctx
    assert facts.n_params > 0 and facts.size_bytes > 0 and facts.load_seconds > 0
    assert client.prompt_format is not None and client.prompt_format.kind is kind
    assert facts.prompt_format == client.prompt_format.name
    if kind is PromptFormatKind.LLAMA4:
        assert client.prompt_format == PromptFormat.llama4()
        assert facts.n_vocab == len(tiny_vocab()[0])
        assert facts.n_ctx_train == 16384
        assert (facts.bos_token, facts.eos_token) == ("<|begin_of_text|>", "<|eot|>")
        assert facts.warnings == ()  # the fixture's template is Meta's: nothing to warn about
    else:  # SmolLM2 is formatted with its own template, never with Llama 4's
        assert client.prompt_format.template == read_gguf(model).chat_template
        assert "<|im_start|>" in client.prompt_format.render(GREETING)
        assert facts.eos_token == "<|im_end|>"


# -- 2. chat -----------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", list(MODELS))
def test_chat_streams_tokens_then_finished(
    client: EngineClient, fixture: str, request: pytest.FixtureRequest
) -> None:
    _load(client, request.getfixturevalue(fixture))
    events = _run(client.chat(GREETING, SHORT))

    finished = _finished(events)
    tokens = _tokens(events)
    assert tokens
    assert finished.text == "".join(t.text for t in tokens)
    assert finished.prompt_tokens == client.count_tokens(messages=GREETING) > 0
    assert finished.prompt_tok_s > 0 and finished.time_to_first_token_s > 0
    if finished.stop_reason is ev.StopReason.END_OF_TURN:
        # a random model picks <|eot|> or <|eom|> now and then (2 in 544 tokens)
        assert 0 < finished.generated_tokens < SHORT.max_tokens
    else:
        assert finished.stop_reason is ev.StopReason.MAX_TOKENS
        assert finished.generated_tokens == SHORT.max_tokens
    assert finished.decode_tok_s > 0
    # A Token carries whole characters, so one event may cover several tokens; tokens with
    # no text (a random model's control tokens) are counted only in Finished.
    assert all(t.n_tokens >= 1 and t.text for t in tokens)
    if fixture == "smollm2_gguf":  # a real model's reply: one event per token
        assert sum(t.n_tokens for t in tokens) == finished.generated_tokens == len(tokens)
    else:
        assert sum(t.n_tokens for t in tokens) <= finished.generated_tokens


# -- 3. Stop -----------------------------------------------------------------------------
def _consume_in_thread(
    job: Iterator[Any],
) -> tuple[threading.Thread, list[tuple[float, Any]], threading.Event]:
    """Iterate ``job`` in a thread, stamping each event with its arrival time."""
    arrivals: list[tuple[float, Any]] = []
    first_token = threading.Event()

    def consume() -> None:
        try:
            for event in job:
                arrivals.append((time.perf_counter(), event))
                if isinstance(event, ev.Token):
                    first_token.set()
        finally:
            first_token.set()  # never leave the test waiting

    thread = threading.Thread(target=consume, name="test-consumer")
    thread.start()
    return thread, arrivals, first_token


def test_stop_ends_generation_within_one_token(client: EngineClient, smollm2_gguf: Path) -> None:
    _load(client, smollm2_gguf)
    cancel = CancelToken()
    thread, arrivals, first_token = _consume_in_thread(client.chat(STORY, LONG, cancel))
    assert first_token.wait(30)
    time.sleep(0.05)  # let a few tokens stream
    stopped_at = time.perf_counter()
    cancel.cancel()
    thread.join(10)
    assert not thread.is_alive()

    finished = arrivals[-1][1]
    assert isinstance(finished, ev.Finished), finished
    assert finished.stop_reason is ev.StopReason.USER
    token_times = [at for at, e in arrivals if isinstance(e, ev.Token)]
    late = token_times[-1] - stopped_at
    assert late <= STOP_LATENCY_S + CI_SLACK_S, f"a token came {late * 1000:.0f} ms after Stop"
    assert arrivals[-1][0] - stopped_at <= STOP_LATENCY_S + CI_SLACK_S
    assert 1 <= finished.generated_tokens < 200
    # the engine is ready for the next request at once
    assert _finished(_run(client.chat(GREETING, SamplingSettings(max_tokens=2))))


# -- 4. cancelled load -------------------------------------------------------------------
def test_cancel_on_first_progress_fails_the_load(
    client: EngineClient, smollm2_gguf: Path, tiny_scout: Path
) -> None:
    cancel = CancelToken()
    events = []
    for event in client.load(smollm2_gguf, SETTINGS, cancel):
        if isinstance(event, ev.Notice):  # the engine self-check of a new machine
            continue
        events.append(event)
        if isinstance(event, ev.Progress):
            cancel.cancel()
    assert isinstance(events[0], ev.Progress)
    assert isinstance(events[-1], ev.Failed) and events[-1].cancelled, events[-1]
    assert not any(isinstance(e, ev.Loaded) for e in events)
    assert client.alive and client.facts is None and client.prompt_format is None

    assert _load(client, tiny_scout).architecture == "llama4"
    assert _finished(_run(client.chat(GREETING, SHORT))).generated_tokens > 0


def test_load_with_a_cancelled_token_fails_and_the_engine_lives_on(
    client: EngineClient, smollm2_gguf: Path
) -> None:
    cancel = CancelToken()
    cancel.cancel()
    events = _run(client.load(smollm2_gguf, SETTINGS, cancel))
    assert isinstance(events[-1], ev.Failed) and events[-1].cancelled, events[-1]
    assert client.alive
    assert "llama" in _load(client, smollm2_gguf).architecture


# -- 5. counting tokens ------------------------------------------------------------------
def test_count_tokens_matches_the_rendered_prompt(client: EngineClient, tiny_scout: Path) -> None:
    _load(client, tiny_scout)
    for token in SPECIAL_TOKENS:
        assert client.count_tokens(token) == 1, token
    messages = [
        ChatMessage(Role.SYSTEM, "Be brief."),
        ChatMessage(Role.USER, "Hello! How are you today?"),
        ChatMessage(Role.ASSISTANT, "I am fine, thank you."),
        ChatMessage(Role.USER, "Tell me about the herd."),
    ]
    rendered = render_llama4(messages)
    n = client.count_tokens(messages=messages)
    assert n == client.count_tokens(rendered) == client.count_tokens(text=rendered)

    # llama.cpp splits at special tokens first, so the text between them counts on its own
    pattern = "|".join(re.escape(t) for t in SPECIAL_TOKENS)
    specials = re.findall(pattern, rendered)
    assert len(specials) == 1 + 3 * len(messages) + 2  # BOS, header+end+eot each, gen prompt
    plain = sum(client.count_tokens(piece) for piece in re.split(pattern, rendered) if piece)
    assert n == plain + len(specials)

    finished = _finished(_run(client.chat(messages, SamplingSettings(max_tokens=1))))
    assert finished.prompt_tokens == n  # what the engine decoded is what was counted


def test_count_tokens_with_a_model_template(client: EngineClient, smollm2_gguf: Path) -> None:
    _load(client, smollm2_gguf)
    n = client.count_tokens(messages=GREETING)
    assert n == client.count_tokens(client.prompt_format.render(GREETING))  # type: ignore[union-attr]
    assert n > client.count_tokens("Hello!") > 0
    finished = _finished(_run(client.chat(GREETING, SamplingSettings(max_tokens=1))))
    assert finished.prompt_tokens == n


# -- 6. crash recovery -------------------------------------------------------------------
def test_kill_mid_generation_reports_the_crash_and_restarts(
    client: EngineClient, smollm2_gguf: Path, tiny_scout: Path
) -> None:
    _load(client, smollm2_gguf)
    old_pid = client.pid
    events = []
    for event in client.chat(STORY, LONG):
        events.append(event)
        if isinstance(event, ev.Token) and len(events) == 1:
            client.kill()
    crash = events[-1]
    assert isinstance(crash, ev.EngineCrashed), crash
    assert crash.exit_code == -9
    assert "SIGKILL" in crash.message
    assert not client.alive and client.facts is None
    assert old_pid is not None and not _pid_exists(old_pid)
    # until it is started again, every job answers with the crash
    assert _run(client.chat(GREETING, SHORT)) == [crash]

    client.start()
    assert client.alive and client.pid != old_pid and client.crash is None
    _load(client, tiny_scout)
    assert _finished(_run(client.chat(GREETING, SHORT))).generated_tokens > 0


def test_llama_cpp_abort_is_a_crash_not_a_hang(
    client: EngineClient,
    tiny_llama4_broken: Path,
    tiny_scout: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # the engine inherits it: that is where a core file would land
    facts = _load(client, tiny_llama4_broken, preflight=False)
    assert "17Bx16E" in facts.description

    events = _run(client.chat(GREETING, SHORT))
    crash = events[-1]
    assert isinstance(crash, ev.EngineCrashed), crash
    assert crash.exit_code == -6
    assert "SIGABRT" in crash.message
    assert any("GGML_ASSERT" in line for line in crash.log_tail), crash.log_tail
    assert any("tensor buffer not set" in line for line in crash.log_tail)
    assert list(cwd.iterdir()) == []  # no core dump
    captured = capfd.readouterr()
    assert "GGML_ASSERT" not in captured.out + captured.err

    client.start()
    _load(client, tiny_scout)
    assert _finished(_run(client.chat(GREETING, SHORT))).generated_tokens > 0


def test_preflight_refuses_the_broken_model(client: EngineClient, tiny_llama4_broken: Path) -> None:
    events = _run(client.load(tiny_llama4_broken, SETTINGS))
    assert len(events) == 1 and isinstance(events[0], ev.Failed), events
    assert "global-attention layer" in events[0].message
    assert not events[0].cancelled
    assert client.pid is None  # refused before the engine was even started


# -- 7. llama.cpp's log ------------------------------------------------------------------
def test_llama_cpp_logs_to_the_engine_log_only(
    client: EngineClient,
    paths: AppPaths,
    tiny_scout: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    _load(client, tiny_scout)
    _finished(_run(client.chat(GREETING, SHORT)))
    client.shutdown()

    log = paths.engine_log.read_text(encoding="utf-8", errors="replace")
    assert "llama_model_loader" in log
    assert str(tiny_scout) in log
    captured = capfd.readouterr()
    assert captured.out == ""
    for marker in ("llama_", "ggml", "load_tensors", "print_info"):
        assert marker not in captured.err


# -- 8. unload and shutdown --------------------------------------------------------------
def test_unload_then_chat_fails(client: EngineClient, tiny_scout: Path) -> None:
    _load(client, tiny_scout)
    client.unload()
    assert client.facts is None and client.prompt_format is None
    events = _run(client.chat(GREETING, SHORT))
    assert len(events) == 1 and isinstance(events[0], ev.Failed)
    assert "No model is loaded" in events[0].message
    # the engine itself agrees (plain completion skips the client's own check)
    events = _run(client.complete("Hello", SHORT))
    assert len(events) == 1 and isinstance(events[0], ev.Failed)
    assert "No model is loaded" in events[0].message
    assert client.alive


def test_shutdown_joins_the_process_and_a_later_job_starts_a_new_one(
    client: EngineClient, tiny_scout: Path
) -> None:
    _load(client, tiny_scout)
    pid = client.pid
    assert pid is not None and _pid_exists(pid)
    client.shutdown()
    assert client.pid is None and not client.alive
    assert not _pid_exists(pid)
    assert client.crash is None  # asked to exit: not a crash

    _load(client, tiny_scout)  # starts a fresh engine
    assert client.pid not in (None, pid)


def test_shutdown_during_generation_ends_the_job(client: EngineClient, smollm2_gguf: Path) -> None:
    _load(client, smollm2_gguf)
    thread, arrivals, first_token = _consume_in_thread(client.chat(STORY, LONG))
    assert first_token.wait(30)
    client.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    last = arrivals[-1][1]
    assert isinstance(last, ev.Finished | ev.Failed), last
    if isinstance(last, ev.Finished):
        assert last.stop_reason is ev.StopReason.USER
    assert client.crash is None
