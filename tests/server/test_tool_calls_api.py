"""Tool calls through the real engine and ``herd serve``, read back as OpenAI ``tool_calls``.

The random tiny models write noise, so this one is made to write a known reply: a tiny
Scout whose greedy next token depends only on the current one (each token of the reply
lights its own hidden dimension, which only the next token's output row reads). Its reply
is Llama 4's Python-list tool call, one byte token at a time, then ``<|eom|>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.server.conftest import Server

CALL = "[get_day(n=1)]"  # every character once: a successor chain can spell it
DAY_TOOL = {
    "type": "function",
    "function": {
        "name": "get_day",
        "description": "The day of the week, n days from today.",
        "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}},
    },
}
OTHER_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
ASK = [{"role": "user", "content": "Which day is tomorrow?"}]


def make_model_that_says(path: Path, text: str) -> Path:
    """A tiny Scout (F16) whose greedy reply to any chat prompt is ``text``, then ``<|eom|>``."""
    from gguf import GGUFReader

    from tests.fixtures.tiny_llama4 import make_tiny_llama4, special_token_id, tiny_vocab

    make_tiny_llama4(path, quantized=False, seed=3)
    tokens, _, _ = tiny_vocab()
    chain = [tokens.index(ch) for ch in text] + [special_token_id("<|eom|>")]
    if len(set(chain)) != len(chain):
        raise ValueError("each token of the reply must be different")
    # the generation prompt ends "<|header_end|>\n\n": any of these may be its last token
    starts = [special_token_id("<|header_end|>")] + [
        tokens.index(t) for t in ("\u010a", "\u010a\u010a") if t in tokens
    ]
    steps = [(starts, chain[0])] + [([a], b) for a, b in zip(chain, chain[1:], strict=False)]
    reader = GGUFReader(path, "r+")
    tensors = {t.name: t.data for t in reader.tensors}
    embd, output = tensors["token_embd.weight"], tensors["output.weight"]
    assert embd.shape[1] > len(steps)
    for dim, (sources, target) in enumerate(steps, start=1):
        embd[sources, dim] = 1.0
        output[:, dim] = 0.0
        output[target, dim] = 1.0
    reader.data.flush()
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("says-call")
    model = make_model_that_says(folder / "says-call.gguf", CALL)
    running = Server(model, tmp_path_factory.mktemp("home"))
    yield running
    running.stop()
    assert running.process.returncode == 0, running.stderr


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=60)


def _ask(client: openai.OpenAI, **extra: object) -> object:
    return client.chat.completions.create(  # type: ignore[call-overload]
        model="x", messages=ASK, temperature=0, max_tokens=40, **extra
    )


def test_the_model_writes_the_call_as_text_without_tools(client: openai.OpenAI) -> None:
    answer = _ask(client)
    choice = answer.choices[0]  # type: ignore[attr-defined]
    assert choice.message.content == CALL  # the known reply, through the real engine
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"


def test_with_tools_the_call_comes_back_as_tool_calls(client: openai.OpenAI) -> None:
    answer = _ask(client, tools=[DAY_TOOL])
    choice = answer.choices[0]  # type: ignore[attr-defined]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_day"
    assert json.loads(call.function.arguments) == {"n": 1}

    # the call goes back with its result, and the conversation renders and runs on
    follow_up = client.chat.completions.create(
        model="x",
        messages=[
            *ASK,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"day": "Thursday"}'},
        ],  # type: ignore[list-item]
        tools=[DAY_TOOL],  # type: ignore[list-item]
        temperature=0,
        max_tokens=40,
    )
    assert follow_up.choices[0].finish_reason == "tool_calls"  # this model only calls


def test_streamed_tool_calls_come_as_deltas(client: openai.OpenAI) -> None:
    stream = _ask(client, tools=[DAY_TOOL], stream=True)
    chunks = list(stream)  # type: ignore[call-overload]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert not any(d.content for d in deltas)  # the call is not also sent as text
    calls = [tc for d in deltas for tc in d.tool_calls or ()]
    assert len(calls) == 1 and calls[0].index == 0
    assert calls[0].function.name == "get_day"
    assert json.loads(calls[0].function.arguments) == {"n": 1}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_call_to_a_function_not_offered_stays_text(client: openai.OpenAI) -> None:
    answer = _ask(client, tools=[OTHER_TOOL])
    choice = answer.choices[0]  # type: ignore[attr-defined]
    assert choice.message.content == CALL and choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    stream = _ask(client, tools=[OTHER_TOOL], stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)  # type: ignore[union-attr]
    assert text == CALL
