"""A reply's text pushed from the engine's pipe reader: the window's token path."""

from __future__ import annotations

import threading
from pathlib import Path

from app.core import events as ev
from app.core.chat.messages import ChatMessage, Role
from app.core.engine import selfcheck
from app.core.engine.client import EngineClient
from app.core.engine.engine_config import DEFAULT, CheckRecord, write_record
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings

SETTINGS = LoadSettings(n_ctx=512, n_threads=1)


def test_pushed_tokens_come_on_the_reader_thread_before_the_end(
    client: EngineClient, smollm2_gguf: Path
) -> None:
    assert isinstance(list(client.load(smollm2_gguf, SETTINGS))[-1], ev.Loaded)
    pushed: list[tuple[str, ev.Token]] = []
    ended_after: list[int] = []

    def on_token(event: ev.Token) -> None:
        pushed.append((threading.current_thread().name, event))

    messages = [ChatMessage(Role.USER, "Count from one to twenty.")]
    events = []
    for event in client.chat(messages, SamplingSettings(max_tokens=24, seed=1), on_token=on_token):
        if isinstance(event, ev.Finished):
            ended_after.append(len(pushed))
        events.append(event)
    assert not any(isinstance(e, ev.Token) for e in events)  # none went through the job
    done = events[-1]
    assert isinstance(done, ev.Finished) and done.generated_tokens > 0
    assert pushed and {name for name, _ in pushed} == {"engine-events"}
    assert ended_after == [len(pushed)]  # every token was handed on before the Finished
    assert "".join(t.text for _, t in pushed) == done.text
    assert sum(t.n_tokens for _, t in pushed) == done.generated_tokens

    # without a receiver the same request yields its tokens, as the CLI and tests use it
    again = list(client.chat(messages, SamplingSettings(max_tokens=24, seed=1)))
    assert "".join(e.text for e in again if isinstance(e, ev.Token)) == done.text


def test_a_crash_at_the_first_pushed_decode_gets_the_safe_retry(
    tmp_path: Path, smollm2_gguf: Path
) -> None:
    """The AMX crash, emulated past a passed self-check: the retry works with pushed tokens."""
    paths = AppPaths.under(tmp_path / "home").ensure()
    record = CheckRecord(selfcheck.machine_fingerprint(), (), DEFAULT, "checked", 0.0, 0.0)
    write_record(paths.state, record)
    with EngineClient(paths, env={"HERD_TEST_CRASH_REPACKED_DECODE": "1"}) as engine:
        assert isinstance(list(engine.load(smollm2_gguf, SETTINGS))[-1], ev.Loaded)
        pushed: list[ev.Token] = []
        events = list(
            engine.chat(
                [ChatMessage(Role.USER, "Hi")],
                SamplingSettings(max_tokens=4, seed=1),
                on_token=pushed.append,
            )
        )
        assert [e for e in events if isinstance(e, ev.Notice)], events  # it was retried
        assert isinstance(events[-1], ev.Finished), events[-1]
        assert pushed and sum(t.n_tokens for t in pushed) == events[-1].generated_tokens


def test_a_prompt_past_the_context_says_so_as_a_field(
    client: EngineClient, smollm2_gguf: Path
) -> None:
    """The server and others tell a full context by ``Failed.context_full``, not by words."""
    assert isinstance(list(client.load(smollm2_gguf, LoadSettings(n_ctx=256)))[-1], ev.Loaded)
    long = [ChatMessage(Role.USER, "llama " * 400)]
    failed = list(client.chat(long, SamplingSettings(max_tokens=4)))[-1]
    assert isinstance(failed, ev.Failed) and failed.context_full
    assert "the context holds 256" in failed.message
    ok = list(client.chat([ChatMessage(Role.USER, "Hi")], SamplingSettings(max_tokens=2)))[-1]
    assert isinstance(ok, ev.Finished)
