"""Overflow policy on the real engine: the tiny Llama 4 Scout with a 256-token context."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from app.core import events as ev
from app.core.chat.budget import (
    ContextFullError,
    OverflowPolicy,
    TokenBudget,
    reply_reserve,
)
from app.core.chat.messages import ChatMessage, Role
from app.core.engine.client import EngineClient
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings

N_CTX = 256
SETTINGS = LoadSettings(n_ctx=N_CTX, n_threads=1)  # one thread: see test_engine_client.py
SAMPLING = SamplingSettings(max_tokens=16, seed=1234)
SYSTEM = "You are Herd's test assistant, system marker."
PINNED = "Remember this pinned fact: the llama is named Pablo."
N_TURNS = 12


def _conversation() -> list[ChatMessage]:
    """System prompt, a pinned question (index 1), many turns, then the new question."""
    messages = [
        ChatMessage(Role.SYSTEM, SYSTEM),
        ChatMessage(Role.USER, PINNED),
        ChatMessage(Role.ASSISTANT, "Noted."),
    ]
    for turn in range(N_TURNS):
        messages.append(ChatMessage(Role.USER, f"Old question number {turn}: how tall is it?"))
        messages.append(ChatMessage(Role.ASSISTANT, f"Old answer number {turn}: quite tall."))
    messages.append(ChatMessage(Role.USER, "What is the llama's name?"))
    return messages


@pytest.fixture
def client(tmp_path: Path, tiny_scout: Path) -> Iterator[EngineClient]:
    engine = EngineClient(AppPaths.under(tmp_path / "home"))
    try:
        events = list(engine.load(tiny_scout, SETTINGS))
        assert isinstance(events[-1], ev.Loaded), events[-1]
        assert engine.facts is not None and engine.facts.n_ctx == N_CTX
        yield engine
    finally:
        engine.shutdown()
    assert not engine.alive


class CountingCounter:
    """The engine's token count, with the number of round trips recorded."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self.calls = 0

    def __call__(self, messages: Sequence[ChatMessage]) -> int:
        self.calls += 1
        return self.client.count_tokens(messages=messages)


def test_stop_refuses_before_anything_is_generated(client: EngineClient) -> None:
    messages = _conversation()
    needed = client.count_tokens(messages=messages)
    assert needed > N_CTX, "the conversation must overflow for this test to mean anything"
    budget = TokenBudget.for_context(N_CTX, SAMPLING.max_tokens)
    assert budget.policy is OverflowPolicy.STOP
    counter = CountingCounter(client)
    with pytest.raises(ContextFullError) as info:
        budget.fit(messages, counter)
    assert counter.calls == 1
    assert info.value.needed == needed + budget.reserve
    assert f"{needed + budget.reserve:,} tokens" in info.value.user_message
    assert "the context holds 256" in info.value.user_message


def test_drop_oldest_fits_the_real_prompt(client: EngineClient) -> None:
    messages = _conversation()
    reserve = reply_reserve(SAMPLING.max_tokens, N_CTX)
    budget = TokenBudget(N_CTX, reserve, OverflowPolicy.DROP_OLDEST)
    counter = CountingCounter(client)
    fitted = budget.fit(messages, counter, pinned=frozenset({1}))
    assert counter.calls <= 2 + math.ceil(math.log2(N_TURNS + 1))

    # the oldest unpinned turns went, whole; the system prompt and the pinned turn stayed
    assert fitted.dropped
    assert fitted.dropped == tuple(range(3, 3 + len(fitted.dropped)))
    assert len(fitted.dropped) % 2 == 0
    assert fitted.messages[:3] == tuple(messages[:3])
    assert fitted.messages[-1] == messages[-1]
    prompt = client.prompt_format.render(fitted.messages)  # type: ignore[union-attr]
    assert SYSTEM in prompt
    assert PINNED in prompt
    assert "Old question number 0:" not in prompt
    assert "Old answer number 0:" not in prompt
    assert f"Old question number {N_TURNS - 1}:" in prompt

    # the count is the engine's own, and the prompt plus the reply fit the real context
    assert fitted.prompt_tokens == client.count_tokens(messages=fitted.messages)
    assert fitted.prompt_tokens + fitted.reserve <= N_CTX
    events = list(client.chat(fitted.messages, SAMPLING))
    finished = events[-1]
    assert isinstance(finished, ev.Finished), finished
    assert finished.prompt_tokens == fitted.prompt_tokens
    assert finished.prompt_tokens + finished.generated_tokens <= N_CTX
    assert finished.stop_reason is not ev.StopReason.CONTEXT_FULL
