"""Where generation ends: Llama 4's end tokens, ordinary tokens, and a model with no template.

The tiny Llama 4 models here are rigged (``make_tiny_llama4(favor_token=...)``) so that greedy
decoding picks one token at every position; the engine's reaction to that token is then
certain, not a matter of luck.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core import events as ev
from app.core.chat.llama4_format import EOM, EOT
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.prompt_format import PromptFormatKind
from app.core.engine.client import EngineClient
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings
from tests.conftest import FAVORED_WORD
from tests.fixtures.tiny_llama4 import bytes_to_unicode

# one thread: see test_engine_client.SETTINGS
SETTINGS = LoadSettings(n_ctx=512, n_threads=1)
GREEDY = SamplingSettings(temperature=0.0, top_k=1, max_tokens=16, seed=1)
GREETING = [ChatMessage(Role.USER, "Hello!")]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[EngineClient]:
    engine = EngineClient(AppPaths.under(tmp_path / "home"))
    yield engine
    engine.shutdown()
    assert not engine.alive


def _load(client: EngineClient, model: Path) -> ev.ModelFacts:
    events = list(client.load(model, SETTINGS))
    assert isinstance(events[-1], ev.Loaded), events[-1]
    return events[-1].facts


def _run(job: Iterator[Any]) -> tuple[list[ev.Token], Any]:
    events = list(job)
    assert all(isinstance(e, ev.Token) for e in events[:-1]), events
    return events[:-1], events[-1]


@pytest.mark.parametrize(
    ("fixture", "end"), [("tiny_llama4_says_eot", EOT), ("tiny_llama4_says_eom", EOM)]
)
def test_llama4_end_token_ends_the_turn_at_once(
    client: EngineClient, fixture: str, end: str, request: pytest.FixtureRequest
) -> None:
    _load(client, request.getfixturevalue(fixture))
    tokens, finished = _run(client.chat(GREETING, GREEDY))
    assert isinstance(finished, ev.Finished), finished
    assert finished.stop_reason is ev.StopReason.END_OF_TURN
    assert finished.stop_token == end  # which one: <|eom|> means a tool result comes next
    assert tokens == []
    assert finished.text == ""
    assert finished.generated_tokens == 0
    assert finished.prompt_tokens > 0


def test_an_ordinary_token_does_not_stop_generation(
    client: EngineClient, tiny_llama4_says_model: Path
) -> None:
    _load(client, tiny_llama4_says_model)
    tokens, finished = _run(client.chat(GREETING, GREEDY))
    assert isinstance(finished, ev.Finished), finished
    assert finished.stop_reason is ev.StopReason.MAX_TOKENS
    assert finished.stop_token == ""
    assert finished.generated_tokens == GREEDY.max_tokens
    byte_of = {char: byte for byte, char in bytes_to_unicode().items()}
    word = bytes(byte_of[c] for c in FAVORED_WORD).decode()  # " model"
    # a fast model's tokens arrive in batches (one pipe write per few ms)
    assert "".join(t.text for t in tokens) == word * GREEDY.max_tokens
    assert sum(t.n_tokens for t in tokens) == GREEDY.max_tokens
    assert finished.text == word * GREEDY.max_tokens


def test_end_tokens_in_the_prompt_do_not_end_a_reply_early(
    client: EngineClient, tiny_llama4_says_model: Path
) -> None:
    """Every turn in the prompt ends with <|eot|>; only a generated one stops the reply."""
    _load(client, tiny_llama4_says_model)
    history = [
        ChatMessage(Role.USER, "Hi"),
        ChatMessage(Role.ASSISTANT, "Hello.", expects_tool_result=True),  # ends with <|eom|>
        ChatMessage(Role.IPYTHON, "42"),
        ChatMessage(Role.ASSISTANT, "It is 42."),
        ChatMessage(Role.USER, "Thanks!"),
    ]
    _tokens, finished = _run(client.chat(history, GREEDY))
    assert isinstance(finished, ev.Finished), finished
    assert finished.stop_reason is ev.StopReason.MAX_TOKENS


def test_base_model_without_template_refuses_chat_but_completes(
    client: EngineClient, gemma3_gguf: Path
) -> None:
    facts = _load(client, gemma3_gguf)
    assert facts.architecture == "gemma3"
    assert client.prompt_format is not None
    assert client.prompt_format.kind is PromptFormatKind.COMPLETION_ONLY
    assert any("no chat template" in w for w in facts.warnings)

    events = list(client.chat(GREETING, GREEDY))
    assert len(events) == 1, events  # refused before anything reaches the engine
    failed = events[0]
    assert isinstance(failed, ev.Failed) and not failed.cancelled
    assert "no chat template" in failed.message

    tokens, finished = _run(client.complete("The capital of France is", GREEDY))
    assert isinstance(finished, ev.Finished), finished
    assert tokens and finished.text.strip()
    assert finished.text == "".join(t.text for t in tokens)
    assert finished.generated_tokens > 0
