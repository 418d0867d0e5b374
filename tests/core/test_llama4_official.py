"""Herd's Llama 4 format against the official template, byte for byte: tools and images.

The reference is the official template rendered the way transformers renders it
(:mod:`tests.core.official_template`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import jinja2
import pytest

from app.core.chat.llama4_format import (
    ENVIRONMENT_LINE,
    IMAGE,
    TOOLS_PREAMBLE,
    join_segments,
    render_llama4,
    render_llama4_segments,
)
from app.core.chat.messages import ChatMessage, Role, ToolCall
from app.core.chat.prompt_format import PromptFormat
from app.core.errors import TemplateError
from tests.core import official_template as official

S, U, A, T = Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.IPYTHON


def _tool(name: str, description: str, **properties: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {k: {"type": v} for k, v in properties.items()},
                "required": list(properties),
            },
        },
    }


WEATHER = _tool("get_weather", "Das Wetter in einer Stadt (\u00b0C).", city="string")
TIME = _tool("get_time", "The time in a zone, e.g. \u201cEurope/Z\u00fcrich\u201d.", zone="string")
SEARCH = {"name": "search", "description": "Search <the web> & more", "parameters": {}}


def _call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(name, arguments)


ROUND = [
    ChatMessage(U, "  What's the weather in Z\u00fcrich and the time? \n"),
    ChatMessage(A, "", tool_calls=(_call("get_weather", city="Z\u00fcrich"),)),
    ChatMessage(T, '{"temperature": 21, "sky": "clear \u2600"}'),
]

CONVERSATIONS: dict[str, tuple[list[ChatMessage], list[dict[str, Any]] | None]] = {
    "system, one tool, one call, follow-up": (
        [
            ChatMessage(S, "  You are Herd\u2019s helpful assistant.\n"),
            *ROUND,
            ChatMessage(A, "It is 21 \u00b0C and clear.  \n"),
            ChatMessage(U, "\tThanks! "),
        ],
        [WEATHER],
    ),
    "no system, several tools, several calls in one message": (
        [
            *ROUND[:1],
            ChatMessage(
                A,
                "",
                tool_calls=(
                    _call("get_weather", city="Z\u00fcrich", unit="celsius", days=[1, 2]),
                    _call("get_time", zone="Europe/Z\u00fcrich", exact=True, offset=None),
                ),
            ),
            ChatMessage(T, '{"temperature": 21}'),
            ChatMessage(T, "14:05"),
        ],
        [WEATHER, TIME, SEARCH],
    ),
    "text around the calls, nested arguments": (
        [
            ChatMessage(S, "Use the tools."),
            ChatMessage(U, "Find it."),
            ChatMessage(
                A,
                "Let me look that up.\n",
                tool_calls=(_call("search", query='say "hi" \\ <|eot|>', filters={"n": 1.5}),),
            ),
            ChatMessage(T, 'He said "hi"\n\ttab \\ backslash \x01 <|eot|> \u4f60\u597d'),
            ChatMessage(A, "Found it."),
        ],
        [SEARCH],
    ),
    "two rounds": (
        [
            *ROUND,
            ChatMessage(A, "", tool_calls=(_call("get_time", zone="UTC"),)),
            ChatMessage(T, ""),
            ChatMessage(A, "Done."),
            ChatMessage(U, "And tomorrow?", images=("a.png",), image_offsets=(13,)),
        ],
        [WEATHER, TIME],
    ),
    "calls without tool definitions": (
        [ChatMessage(S, " s "), *ROUND, ChatMessage(A, "ok")],
        None,
    ),
    "empty tool list (still the preamble)": ([*ROUND[:1]], []),
    "system only with tools after it": (
        [ChatMessage(S, "Be brief."), ChatMessage(U, "   ")],
        [WEATHER],
    ),
}


@pytest.mark.parametrize("add_generation_prompt", [True, False])
@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_tool_rounds_match_the_official_template(name: str, add_generation_prompt: bool) -> None:
    messages, tools = CONVERSATIONS[name]
    ours = render_llama4(messages, tools=tools, add_generation_prompt=add_generation_prompt)
    theirs = official.render(messages, tools, add_generation_prompt=add_generation_prompt)
    assert ours == theirs
    fmt = PromptFormat.llama4()
    segments = fmt.render_segments(
        messages, tools=tools, add_generation_prompt=add_generation_prompt
    )
    assert segments == render_llama4_segments(
        messages, tools=tools, add_generation_prompt=add_generation_prompt
    )
    assert join_segments(segments) == theirs


def test_the_reference_is_the_official_template() -> None:
    assert hashlib.sha256(official.PATH.read_bytes()).hexdigest() == official.SHA256


def test_a_tool_round_spelled_out() -> None:
    messages, tools = CONVERSATIONS["system, one tool, one call, follow-up"]
    text = render_llama4(messages, tools=[_tool("f", "d\u00e9j\u00e0", x="string")])
    assert text.startswith(
        "<|begin_of_text|><|header_start|>system<|header_end|>\n\nEnvironment: ipython\n"
        "You are Herd\u2019s helpful assistant.<|eot|>"
        "<|header_start|>user<|header_end|>\n\n"
        "Given the following functions, please respond with a JSON for a function call with "
        "its proper arguments that best answers the given prompt.\n\n"
        'Respond in the format {"name": function name, "parameters": dictionary of argument '
        'name and its value}.Do not use variables.\n\n{\n    "type": "function",\n'
        '    "function": {\n        "name": "f",\n        "description": "d\u00e9j\u00e0",'
    )
    assert text.endswith(
        '"required": [\n                "x"\n            ]\n        }\n    }\n}\n\n'
        "What's the weather in Z\u00fcrich and the time?<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n<|python_start|><|python_end|>"
        '{"name": "get_weather", "parameters": {"city": "Z\u00fcrich"}}<|eot|>'
        '<|header_start|>ipython<|header_end|>\n\n"{\\"temperature\\": 21, \\"sky\\": '
        '\\"clear \u2600\\"}"<|eot|>'
        "<|header_start|>assistant<|header_end|>\n\nIt is 21 \u00b0C and clear.  \n<|eot|>"
        "<|header_start|>user<|header_end|>\n\n\tThanks! <|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )
    assert tools == [WEATHER]


def test_tool_text_is_content_and_the_markers_are_format() -> None:
    messages, tools = CONVERSATIONS["text around the calls, nested arguments"]
    segments = render_llama4_segments(messages, tools=tools)
    contents = [text for text, is_format in segments if not is_format]
    assert contents == [
        "Use the tools.",
        '{\n    "name": "search",\n    "description": "Search <the web> & more",\n'
        '    "parameters": {}\n}',
        "Find it.",
        "Let me look that up.\n",
        '{"name": "search", "parameters": {"query": "say \\"hi\\" \\\\ <|eot|>", '
        '"filters": {"n": 1.5}}}',
        '"He said \\"hi\\"\\n\\ttab \\\\ backslash \\u0001 <|eot|> \u4f60\u597d"',
        "Found it.",
    ]
    formats = [text for text, is_format in segments if is_format]
    assert formats[1] == "<|eot|><|header_start|>user<|header_end|>\n\n" + TOOLS_PREAMBLE
    assert ENVIRONMENT_LINE in formats[0]
    assert formats[2] == "\n\n" and formats[3].endswith("<|python_start|>")
    assert formats[4] == "<|python_end|>"


PART_LISTS: list[list[dict[str, str]]] = [
    [{"type": "text", "text": "Before "}, {"type": "image"}, {"type": "text", "text": " after"}],
    [
        {"type": "text", "text": " one: "},
        {"type": "image"},
        {"type": "text", "text": "\ntwo: "},
        {"type": "image"},
    ],
    [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "both first"}],
    [{"type": "text", "text": "both last "}, {"type": "image"}, {"type": "image"}],
    [{"type": "image"}, {"type": "text", "text": "a"}, {"type": "image"}],
    [{"type": "image"}],
]


@pytest.mark.parametrize("parts", PART_LISTS)
def test_images_where_the_user_put_them(parts: list[dict[str, str]]) -> None:
    refs = [f"img{i}.png" for i, p in enumerate(parts) if p["type"] == "image"]
    data = {"role": "user", "content": parts, "images": refs}
    message = ChatMessage.from_dict(data)
    conversation = [ChatMessage(S, "Look."), message, ChatMessage(A, "Seen.")]
    dicts = [
        {"role": "system", "content": "Look."},
        {"role": "user", "content": parts},
        {"role": "assistant", "content": "Seen."},
    ]
    assert official.render(conversation) == official.render_dicts(dicts)
    assert render_llama4(conversation) == official.render_dicts(dicts)
    assert render_llama4(conversation).count(IMAGE) == len(refs)
    segments = render_llama4_segments(conversation)
    assert (IMAGE, True) in segments or any(IMAGE in t for t, f in segments if f)
    assert all(IMAGE not in text for text, is_format in segments if not is_format)


def test_images_are_format_text_between_content_pieces() -> None:
    message = ChatMessage(U, "a<|image|>b", images=("x.png",), image_offsets=(1,))
    segments = render_llama4_segments([message], include_bos=False)
    assert segments == [
        ("<|header_start|>user<|header_end|>\n\n", True),
        ("a", False),
        (IMAGE, True),
        ("<|image|>b", False),
        ("<|eot|><|header_start|>assistant<|header_end|>\n\n", True),
    ]


def test_a_one_part_system_message_renders_as_the_official_template() -> None:
    dicts = [
        {"role": "system", "content": [{"type": "text", "text": "  Be brief. "}]},
        {"role": "user", "content": "Hi"},
    ]
    messages = [ChatMessage.from_dict(d) for d in dicts]
    assert messages[0] == ChatMessage(S, "  Be brief. ")
    assert render_llama4(messages) == official.render_dicts(dicts)


def test_a_system_message_of_several_parts_is_refused_not_cut() -> None:
    parts = [{"type": "text", "text": "Be brief."}, {"type": "text", "text": " Be kind."}]
    dicts = [{"role": "system", "content": parts}, {"role": "user", "content": "Hi"}]
    # The official template silently drops " Be kind." ...
    assert "Be kind" not in official.render_dicts(dicts)
    # ... Herd says so instead.
    with pytest.raises(TemplateError, match="keeps only the first one") as caught:
        ChatMessage.from_dict(dicts[0])
    assert "Join the system prompt" in caught.value.hint


# --- where the official template breaks, Herd refuses with a reason ----------------------


def test_tools_without_a_user_message_are_refused() -> None:
    with pytest.raises(jinja2.exceptions.TemplateError, match="no first user message"):
        official.render([ChatMessage(S, "sys")], [WEATHER])
    for messages in ([ChatMessage(S, "sys")], [ChatMessage(S, "s"), ChatMessage(A, "hi")]):
        with pytest.raises(TemplateError, match="first user message"):
            render_llama4(messages, tools=[WEATHER])


def test_tools_with_images_in_the_first_user_message_are_refused() -> None:
    message = ChatMessage(U, "What is this?", images=("a.png",))
    garbled = official.render([message], [WEATHER])
    assert "[{'type': 'image'}" in garbled  # the template trims the parts list as text
    with pytest.raises(TemplateError, match="carries images"):
        render_llama4([message], tools=[WEATHER])
    later = [ChatMessage(U, "Hi"), ChatMessage(A, "Hello"), message]
    assert render_llama4(later, tools=[WEATHER]) == official.render(later, [WEATHER])


@pytest.mark.parametrize(
    ("tools", "words"),
    [
        (WEATHER, "must be a list"),
        ("get_weather", "must be a list"),
        ([WEATHER, "search"], "Tool definition 2 is a str"),
        ([{"f": float("nan")}], "not plain JSON"),
        ([{"f": object()}], "not plain JSON"),
    ],
)
def test_bad_tool_definitions_are_refused(tools: Any, words: str) -> None:
    with pytest.raises(TemplateError, match=words):
        render_llama4([ChatMessage(U, "Hi")], tools=tools)


@pytest.mark.parametrize(
    ("name", "arguments", "words"),
    [
        ("", {}, "needs a function name"),
        ('say"hi', {}, "quote, backslash or control"),
        ("a\nb", {}, "quote, backslash or control"),
        ("f", [1, 2], "must be a JSON object"),
        ("f", "[1, 2]", "must be a JSON object"),
        ("f", "{not json", "not valid JSON"),
        ("f", {"x": float("inf")}, "not plain JSON"),
    ],
)
def test_bad_tool_calls_are_refused(name: str, arguments: Any, words: str) -> None:
    with pytest.raises(TemplateError, match=words):
        ToolCall(name, arguments)


def test_tool_calls_belong_to_assistant_messages_ending_with_eot() -> None:
    call = ToolCall("f", {})
    with pytest.raises(TemplateError, match="Only an assistant message"):
        ChatMessage(U, "x", tool_calls=(call,))
    with pytest.raises(TemplateError, match="cannot also end with <|eom|>"):
        ChatMessage(A, "", expects_tool_result=True, tool_calls=(call,))
    text = render_llama4([ChatMessage(U, "x"), ChatMessage(A, "", tool_calls=(call,))])
    assert text.endswith('<|python_end|>{"name": "f", "parameters": {}}<|eot|>' + _assistant())


def _assistant() -> str:
    return "<|header_start|>assistant<|header_end|>\n\n"
