"""Tool definitions reach the model through the engine, in the official template's place."""

from __future__ import annotations

from pathlib import Path

from app.core import events as ev
from app.core.chat.llama4_format import render_llama4
from app.core.chat.messages import ChatMessage, Role
from app.core.engine.client import EngineClient
from app.core.settings import LoadSettings, SamplingSettings

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_a_chat_with_tools_evaluates_the_official_prompt(
    client: EngineClient, tiny_scout: Path
) -> None:
    assert isinstance(list(client.load(tiny_scout, LoadSettings(n_ctx=1024)))[-1], ev.Loaded)
    messages = [ChatMessage(Role.USER, "Weather in Lisbon?")]
    sampling = SamplingSettings(max_tokens=2, seed=1)
    plain = list(client.chat(messages, sampling))[-1]
    with_tools = list(client.chat(messages, sampling, tools=[WEATHER]))[-1]
    assert isinstance(plain, ev.Finished) and isinstance(with_tools, ev.Finished)
    rendered = render_llama4(messages, tools=[WEATHER])
    assert "get_weather" in rendered and rendered.startswith("<|begin_of_text|>")
    # the tool's JSON is in the prompt the engine evaluated
    assert with_tools.prompt_tokens > plain.prompt_tokens + 20
