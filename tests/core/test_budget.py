"""Token budget and overflow policy, with a fake counter standing in for the engine."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from app.core.chat.budget import (
    ContextFullError,
    Fitted,
    MeterLevel,
    OverflowPolicy,
    TokenBudget,
    fit_conversation,
    meter,
    reply_reserve,
)
from app.core.chat.messages import ChatMessage, Role
from app.core.errors import HerdError

OVERHEAD_PROMPT = 4  # begin of text + the assistant header
OVERHEAD_MESSAGE = 3  # header and end of turn


class FakeCounter:
    """Counts like a rendered prompt would, roughly, and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[ChatMessage, ...]] = []

    def __call__(self, messages: Sequence[ChatMessage]) -> int:
        self.calls.append(tuple(messages))
        return OVERHEAD_PROMPT + sum(len(m.content) // 4 + OVERHEAD_MESSAGE for m in messages)


def _conversation(n_turns: int, words: int = 40) -> list[ChatMessage]:
    """A system prompt, ``n_turns`` user/assistant turns, then a new user message."""
    messages = [ChatMessage(Role.SYSTEM, "Be brief.")]
    for turn in range(n_turns):
        messages.append(ChatMessage(Role.USER, f"question {turn} " + "word " * words))
        messages.append(ChatMessage(Role.ASSISTANT, f"answer {turn} " + "word " * words))
    messages.append(ChatMessage(Role.USER, "And now?"))
    return messages


def _fit(messages: Sequence[ChatMessage], **kwargs: object) -> tuple[Fitted, FakeCounter]:
    counter = FakeCounter()
    options: dict[object, object] = {"n_ctx": 512, "reserve": 64, "count": counter}
    options.update(kwargs)
    return fit_conversation(messages, **options), counter  # type: ignore[arg-type]


# -- fits as it is ----------------------------------------------------------------------
@pytest.mark.parametrize("policy", list(OverflowPolicy))
def test_a_conversation_that_fits_is_sent_whole_after_one_count(policy: OverflowPolicy) -> None:
    messages = _conversation(2)
    fitted, counter = _fit(messages, policy=policy)
    assert fitted.messages == tuple(messages)
    assert fitted.dropped == ()
    assert fitted.prompt_tokens == FakeCounter()(messages)
    assert (fitted.n_ctx, fitted.reserve) == (512, 64)
    assert len(counter.calls) == 1


def test_the_reserve_counts_against_the_context() -> None:
    messages = _conversation(2)
    tokens = FakeCounter()(messages)
    assert _fit(messages, n_ctx=tokens + 10, reserve=10)[0].dropped == ()
    with pytest.raises(ContextFullError):
        _fit(messages, n_ctx=tokens + 10, reserve=11)


# -- STOP -------------------------------------------------------------------------------
def test_stop_is_the_default_and_says_what_is_needed() -> None:
    messages = _conversation(40)
    needed = FakeCounter()(messages) + 256
    counter = FakeCounter()
    with pytest.raises(ContextFullError) as info:
        fit_conversation(messages, count=counter, n_ctx=1024, reserve=256)
    error = info.value
    assert isinstance(error, HerdError)
    assert error.user_message == (
        f"This chat needs {needed:,} tokens but the context holds 1,024 "
        "(with 256 kept for the reply)."
    )
    assert "new chat" in error.hint
    assert "drop the oldest turns" in error.hint
    assert "larger context" in error.hint
    assert (error.needed, error.n_ctx, error.reserve) == (needed, 1024, 256)
    assert len(counter.calls) == 1
    assert OverflowPolicy("stop") is OverflowPolicy.STOP


# -- DROP_OLDEST ------------------------------------------------------------------------
def test_drop_oldest_drops_whole_turns_from_the_start() -> None:
    messages = _conversation(20)
    fitted, _ = _fit(messages, policy=OverflowPolicy.DROP_OLDEST)
    assert fitted.dropped, "something had to go"
    assert fitted.prompt_tokens + fitted.reserve <= fitted.n_ctx
    assert fitted.prompt_tokens == FakeCounter()(fitted.messages)
    # the oldest turns went, in user+assistant pairs, and nothing else
    assert fitted.dropped == tuple(range(1, 1 + len(fitted.dropped)))
    assert len(fitted.dropped) % 2 == 0
    assert fitted.messages[0] == messages[0]
    assert fitted.messages[1].role is Role.USER
    assert fitted.messages[-1] == messages[-1]
    kept = [m for i, m in enumerate(messages) if i not in fitted.dropped]
    assert list(fitted.messages) == kept


def test_drop_oldest_drops_as_few_turns_as_possible() -> None:
    messages = _conversation(20)
    fitted, _ = _fit(messages, policy=OverflowPolicy.DROP_OLDEST)
    one_turn_fewer = len(fitted.dropped) - 2
    restored = [m for i, m in enumerate(messages) if i not in fitted.dropped[:one_turn_fewer]]
    assert FakeCounter()(restored) + fitted.reserve > fitted.n_ctx


def test_pinned_messages_are_kept_with_their_turn() -> None:
    messages = _conversation(20)
    pinned = frozenset({3, 8})  # an early user question and an early assistant answer
    fitted, _ = _fit(messages, policy=OverflowPolicy.DROP_OLDEST, pinned=pinned)
    assert fitted.dropped
    for index in (3, 4, 7, 8):  # the pinned messages and their turn partners
        assert index not in fitted.dropped
        assert messages[index] in fitted.messages
    assert {1, 2, 5, 6}.issubset(fitted.dropped)
    assert fitted.messages[0].role is Role.SYSTEM
    assert fitted.messages[1] == messages[3]
    assert fitted.prompt_tokens + fitted.reserve <= fitted.n_ctx


def test_an_assistant_message_never_comes_first_after_the_system_prompt() -> None:
    # a greeting before the first question is a turn of its own
    messages = [ChatMessage(Role.SYSTEM, "Be brief."), ChatMessage(Role.ASSISTANT, "Hi! " * 40)]
    messages += _conversation(10)[1:]
    fitted, _ = _fit(messages, n_ctx=300, policy=OverflowPolicy.DROP_OLDEST)
    assert 1 in fitted.dropped
    assert fitted.messages[1].role is Role.USER


def test_tool_results_go_with_their_turn() -> None:
    messages = [ChatMessage(Role.SYSTEM, "Use tools.")]
    for turn in range(10):
        messages += [
            ChatMessage(Role.USER, f"q{turn} " + "x " * 80),
            ChatMessage(Role.ASSISTANT, "call " * 20, expects_tool_result=True),
            ChatMessage(Role.IPYTHON, "result " * 20),
            ChatMessage(Role.ASSISTANT, "done " * 20),
        ]
    messages.append(ChatMessage(Role.USER, "last"))
    fitted, _ = _fit(messages, policy=OverflowPolicy.DROP_OLDEST)
    assert fitted.dropped and len(fitted.dropped) % 4 == 0
    assert fitted.messages[1].role is Role.USER


def test_the_last_user_message_and_what_follows_it_are_never_dropped() -> None:
    messages = _conversation(6)
    messages[-1] = ChatMessage(Role.USER, "long " * 300)
    messages.append(ChatMessage(Role.ASSISTANT, "partial reply"))
    fitted, _ = _fit(messages, n_ctx=500, policy=OverflowPolicy.DROP_OLDEST)
    assert fitted.dropped == tuple(range(1, 13))  # every earlier turn had to go
    assert fitted.messages == (messages[0], messages[-2], messages[-1])


def test_drop_oldest_raises_when_even_the_kept_messages_do_not_fit() -> None:
    messages = _conversation(6)
    messages[-1] = ChatMessage(Role.USER, "long " * 1000)
    with pytest.raises(ContextFullError) as info:
        _fit(messages, n_ctx=1024, reserve=256, policy=OverflowPolicy.DROP_OLDEST)
    error = info.value
    assert error.user_message.startswith(
        "Even the system prompt, the pinned messages and the last message need"
    )
    assert "1,024" in error.user_message and "256 kept for the reply" in error.user_message
    assert "larger context" in error.hint
    assert error.needed > error.n_ctx - error.reserve


def test_drop_oldest_with_nothing_to_drop_raises() -> None:
    messages = [ChatMessage(Role.SYSTEM, "s"), ChatMessage(Role.USER, "u " * 2000)]
    with pytest.raises(ContextFullError):
        _fit(messages, policy=OverflowPolicy.DROP_OLDEST)


@pytest.mark.parametrize("n_turns", [5, 50, 500, 2000])
def test_counts_are_logarithmic_in_the_conversation_length(n_turns: int) -> None:
    messages = _conversation(n_turns, words=8)
    fitted, counter = _fit(messages, n_ctx=150, reserve=32, policy=OverflowPolicy.DROP_OLDEST)
    assert fitted.dropped
    assert len(counter.calls) <= 2 + math.ceil(math.log2(n_turns))
    # and the answer is the same as dropping one turn at a time
    for turns in range(n_turns + 1):
        rest = [messages[0], *messages[1 + 2 * turns :]]
        if FakeCounter()(rest) + 32 <= 150:
            break
    assert fitted.dropped == tuple(range(1, 1 + 2 * turns))


def test_bad_arguments_are_caller_bugs() -> None:
    with pytest.raises(ValueError, match="pinned"):
        _fit(_conversation(2), pinned=frozenset({99}))
    with pytest.raises(ValueError, match="reserve"):
        _fit(_conversation(2), reserve=-1)


# -- reserve, TokenBudget, meter --------------------------------------------------------
def test_reply_reserve_is_max_tokens_capped_at_a_quarter_of_the_context() -> None:
    assert reply_reserve(2048, 8192) == 2048
    assert reply_reserve(2048, 4096) == 1024
    assert reply_reserve(16, 256) == 16
    assert reply_reserve(2048, 256) == 64
    assert reply_reserve(-5, 256) == 0


def test_token_budget_wraps_fit_conversation() -> None:
    budget = TokenBudget.for_context(512, 2048, OverflowPolicy.DROP_OLDEST)
    assert (budget.n_ctx, budget.reserve) == (512, 128)
    fitted = budget.fit(_conversation(20), FakeCounter())
    assert fitted.dropped and fitted.prompt_tokens + 128 <= 512
    assert fitted.meter == meter(fitted.prompt_tokens, 512)
    assert budget.meter(100).text == "100 / 512 tokens"
    with pytest.raises(ContextFullError):
        TokenBudget.for_context(512, 2048).fit(_conversation(20), FakeCounter())


@pytest.mark.parametrize(
    ("used", "total", "fraction", "level", "text"),
    [
        (0, 8192, 0.0, MeterLevel.OK, "0 / 8,192 tokens"),
        (1234, 8192, 1234 / 8192, MeterLevel.OK, "1,234 / 8,192 tokens"),
        (6553, 8192, 6553 / 8192, MeterLevel.OK, "6,553 / 8,192 tokens"),
        (6554, 8192, 6554 / 8192, MeterLevel.WARN, "6,554 / 8,192 tokens"),
        (8191, 8192, 8191 / 8192, MeterLevel.WARN, "8,191 / 8,192 tokens"),
        (8192, 8192, 1.0, MeterLevel.FULL, "8,192 / 8,192 tokens"),
        (9000, 8192, 1.0, MeterLevel.FULL, "9,000 / 8,192 tokens"),
        (1234, 0, 0.0, MeterLevel.OK, "1,234 tokens"),
        (-3, 100, 0.0, MeterLevel.OK, "0 / 100 tokens"),
    ],
)
def test_meter(used: int, total: int, fraction: float, level: MeterLevel, text: str) -> None:
    value = meter(used, total)
    assert value.fraction == pytest.approx(fraction)
    assert value.level is level
    assert value.text == text
