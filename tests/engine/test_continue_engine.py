"""EngineClient.chat(continue_final=True) on the real engine: the reply is left open.

The engine is sent the conversation with the last reply not closed: its prompt is the
reply's own prompt plus the reply, no ``<|eot|>`` and no new assistant header, and only
the new text comes back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core import events as ev
from app.core.chat.llama4_format import render_llama4
from app.core.chat.messages import ChatMessage, Role
from app.core.engine.client import EngineClient
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings

SETTINGS = LoadSettings(n_ctx=512, n_threads=1)
GREEDY = SamplingSettings(temperature=0.0, max_tokens=3, seed=1)
QUESTION = [ChatMessage(Role.USER, "Tell me a story.")]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[EngineClient]:
    engine = EngineClient(AppPaths.under(tmp_path / "home"))
    yield engine
    engine.shutdown()
    assert not engine.alive


def _finished(client: EngineClient, messages: list[ChatMessage], **kw: bool) -> ev.Finished:
    events = list(client.chat(messages, GREEDY, **kw))
    assert isinstance(events[-1], ev.Finished), events[-1]
    return events[-1]


def test_continuing_reads_the_reply_as_the_open_turn(
    client: EngineClient, tiny_llama4_says_model: Path
) -> None:
    loaded = list(client.load(tiny_llama4_says_model, SETTINGS))
    assert isinstance(loaded[-1], ev.Loaded)
    assert client.continue_problem == ""
    first = _finished(client, QUESTION)
    assert first.stop_reason is ev.StopReason.MAX_TOKENS and first.text
    so_far = [*QUESTION, ChatMessage(Role.ASSISTANT, first.text)]
    more = _finished(client, so_far, continue_final=True)
    # the prompt is the question's prompt with the reply after it, left open
    open_turn = render_llama4(so_far, continue_final_message=True)
    assert open_turn == render_llama4(QUESTION) + first.text
    assert more.prompt_tokens == client.count_tokens(open_turn)
    assert more.prompt_tokens == first.prompt_tokens + first.generated_tokens
    assert more.generated_tokens == 3 and more.text == first.text  # the same word, again
    closed = _finished(client, so_far)  # a new turn after the reply, for comparison
    assert closed.prompt_tokens == client.count_tokens(render_llama4(so_far))
    assert closed.prompt_tokens > more.prompt_tokens + 1  # its <|eot|>, a new header


def test_a_conversation_that_does_not_end_with_a_reply_is_refused(
    client: EngineClient, tiny_scout: Path
) -> None:
    assert isinstance(list(client.load(tiny_scout, SETTINGS))[-1], ev.Loaded)
    events = list(client.chat(QUESTION, GREEDY, continue_final=True))
    assert isinstance(events[-1], ev.Failed) and "does not end with one" in events[-1].message
