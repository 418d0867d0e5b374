"""Tool calls read back from Llama 4 replies, in the forms of Meta's template and prompt guide."""

from __future__ import annotations

import pytest

from app.core.chat.tool_calls import ParsedReply, parse_tool_calls
from app.core.chat.tools import ToolCall

NAMES = ("get_weather", "trending_songs", "get_user_info")


def _calls(reply: ParsedReply) -> list[tuple[str, dict[str, object]]]:
    return [(c.name, dict(c.arguments)) for c in reply.calls]


def test_the_official_templates_json_form() -> None:
    # what the official template asks for ('Respond in the format {"name": ..., ...}')
    reply = parse_tool_calls('{"name": "get_weather", "parameters": {"city": "Paris"}}', NAMES)
    assert _calls(reply) == [("get_weather", {"city": "Paris"})]
    assert reply.content == ""


def test_a_tool_call_turn_as_the_template_writes_it() -> None:
    # the template's assistant tool-call turn: <|python_start|>text<|python_end|>{call}{call}
    text = (
        "<|python_start|>Checking both.<|python_end|>"
        '{"name": "get_weather", "parameters": {"city": "SF"}}'
        '{"name": "get_weather", "parameters": {"city": "Seattle"}}'
    )
    reply = parse_tool_calls(text, NAMES)
    assert _calls(reply) == [("get_weather", {"city": "SF"}), ("get_weather", {"city": "Seattle"})]
    assert reply.content == "Checking both."


def test_json_round_trips_what_toolcall_text_writes() -> None:
    call = ToolCall("get_weather", {"city": "Zürich", "days": [1, 2], "metric": None})
    assert parse_tool_calls(call.text()).calls == (call,)


def test_meta_reference_json_with_type_function_and_a_list() -> None:
    single = '{"type": "function", "name": "get_weather", "parameters": {"city": "Oslo"}}'
    assert _calls(parse_tool_calls(single, NAMES)) == [("get_weather", {"city": "Oslo"})]
    listed = '[{"name": "get_weather", "arguments": {"city": "Rome"}}]'
    assert _calls(parse_tool_calls(listed, NAMES)) == [("get_weather", {"city": "Rome"})]


def test_the_prompt_guides_python_list_form() -> None:
    # models/llama4/prompt_format.md, zero-shot function calling (system message)
    text = '[get_weather(city="San Francisco"), get_weather(city="Seattle")]'
    assert _calls(parse_tool_calls(text, NAMES)) == [
        ("get_weather", {"city": "San Francisco"}),
        ("get_weather", {"city": "Seattle"}),
    ]
    # ... and the user-message example, with an int and single quotes
    text = "[get_user_info(user_id=7890, special='black')]"
    assert _calls(parse_tool_calls(text, NAMES)) == [
        ("get_user_info", {"user_id": 7890, "special": "black"})
    ]


def test_the_prompt_guides_function_tag_form() -> None:
    reply = parse_tool_calls('<function=trending_songs>{"n": 10}</function>', NAMES)
    assert _calls(reply) == [("trending_songs", {"n": 10})]


def test_a_call_with_no_arguments() -> None:
    assert _calls(parse_tool_calls("[get_weather()]")) == [("get_weather", {})]
    assert _calls(parse_tool_calls('{"name": "get_weather"}')) == [("get_weather", {})]


@pytest.mark.parametrize(
    "text",
    [
        "The weather in Paris is sunny.",
        "Let me check: [get_weather(city='Paris')]",  # text around a call (Meta: INCORRECT)
        '{"name": "get_weather", "parameters": {"city": "Paris"}} and more',
        "[1, 2, 3]",  # a list, not of calls
        '{"name": "Ada", "age": 36}',  # JSON that is not a call (extra keys)
        '{"name": "get_weather", "parameters": "Paris"}',  # arguments not an object
        "[get_weather(city=lookup())]",  # not a literal
        "[get_weather('Paris')]",  # positional: not the documented form
        "[]",
        "",
        '{"name": "get_weather", "parameters": {"city": "Par',  # cut off (max_tokens)
    ],
)
def test_text_that_is_not_only_calls_stays_content(text: str) -> None:
    reply = parse_tool_calls(text, NAMES)
    assert reply.calls == ()
    assert reply.content == text


def test_a_function_the_request_did_not_offer_stays_content() -> None:
    text = '[get_events(location="Singapore")]'  # Meta: INCORRECT if not in the list
    assert parse_tool_calls(text, NAMES) == ParsedReply(text)
    assert _calls(parse_tool_calls(text)) == [("get_events", {"location": "Singapore"})]


def test_blank_lines_around_a_call_are_not_content() -> None:
    text = '\n\n  {"name": "get_weather", "parameters": {"city": "Lima"}}\n'
    reply = parse_tool_calls(text, NAMES)
    assert _calls(reply) == [("get_weather", {"city": "Lima"})]
    assert reply.content == ""
