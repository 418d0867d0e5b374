"""ChatMessage's tool calls and image positions: validation and every round trip."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from app.core.chat.messages import ChatMessage, Role, ToolCall, to_template_dicts
from app.core.chat.prompt_format import PromptFormat
from app.core.chat.template_check import render_chat_template_segments
from app.core.errors import TemplateError
from tests.core import official_template as official

S, U, A, T = Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.IPYTHON

CALL = ToolCall("get_weather", {"city": "Z\u00fcrich", "days": [1, 2], "opts": {"b": 1, "a": 2}})
MESSAGES = [
    ChatMessage(S, " sys "),
    ChatMessage(U, "a  b", images=("x.png", "sha256:ff"), image_offsets=(2, 4)),
    ChatMessage(U, "first", images=("y.png",)),
    ChatMessage(A, "Checking.", tool_calls=(CALL, ToolCall("noop"))),
    ChatMessage(T, '{"t": 21}'),
    ChatMessage(A, "calling", expects_tool_result=True),
]


@pytest.mark.parametrize("message", MESSAGES)
def test_round_trips_through_json_and_pickle(message: ChatMessage) -> None:
    wire = json.loads(json.dumps(message.to_dict()))
    assert ChatMessage.from_dict(wire) == message
    assert pickle.loads(pickle.dumps(message)) == message


@pytest.mark.parametrize("message", MESSAGES)
def test_round_trips_through_template_dicts(message: ChatMessage) -> None:
    (data,) = to_template_dicts([message])
    if message.expects_tool_result:
        data["expects_tool_result"] = True  # Herd's own field; templates know no <|eom|>
    assert ChatMessage.from_dict({**data, "images": list(message.images)}) == message


def test_to_dict_and_template_dicts_shapes() -> None:
    user, call = MESSAGES[1], MESSAGES[3]
    assert user.to_dict() == {
        "role": "user",
        "content": "a  b",
        "images": ["x.png", "sha256:ff"],
        "image_offsets": [2, 4],
    }
    assert call.to_dict()["tool_calls"][0] == {"name": "get_weather", "arguments": CALL.arguments}
    dicts = to_template_dicts([user, call, MESSAGES[4]])
    assert dicts[0]["content"] == [
        {"type": "text", "text": "a "},
        {"type": "image"},
        {"type": "text", "text": " b"},
        {"type": "image"},
    ]
    assert dicts[1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": CALL.arguments}},
            {"type": "function", "function": {"name": "noop", "arguments": {}}},
        ],
    }
    assert "tool_calls" not in dicts[2] and dicts[2]["role"] == "tool"
    assert list(CALL.arguments["opts"]) == ["b", "a"]  # the order is kept, never sorted


def test_openai_shapes_are_read() -> None:
    message = ChatMessage.from_dict(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        }
    )
    assert message == ChatMessage(A, "", tool_calls=(ToolCall("get_weather", {"city": "Paris"}),))
    pictured = ChatMessage.from_dict(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Is "},
                {"type": "image", "image": "sha256:aa"},
                {"type": "text", "text": " a cat?"},
            ],
        }
    )
    assert pictured == ChatMessage(U, "Is  a cat?", images=("sha256:aa",), image_offsets=(3,))


def test_all_images_first_is_the_default() -> None:
    explicit = ChatMessage(U, "text", images=("a", "b"), image_offsets=(0, 0))
    assert explicit == ChatMessage(U, "text", images=("a", "b"))
    assert explicit.image_offsets == () and explicit.pieces() == ["", "", "text"]
    assert ChatMessage(U, "ab", images=("a",), image_offsets=(1,)).pieces() == ["a", "b"]


@pytest.mark.parametrize(
    ("images", "offsets", "words"),
    [
        (("a",), (0, 1), "1 image(s) but 2 image position(s)"),
        ((), (1,), "0 image(s) but 1"),
        (("a", "b"), (3, 1), "not a place"),
        (("a",), (99,), "from 0 to 4"),
        (("a",), (-1,), "not a place"),
        (("a",), (True,), "not a place"),
        (("a",), (1.0,), "not a place"),
    ],
)
def test_bad_image_positions_are_refused(
    images: tuple[str, ...], offsets: tuple[Any, ...], words: str
) -> None:
    with pytest.raises(TemplateError, match=words.replace("(", r"\(").replace(")", r"\)")):
        ChatMessage(U, "text", images=images, image_offsets=offsets)


@pytest.mark.parametrize(
    "data",
    [
        {"role": "user", "content": [{"type": "image"}]},  # names no image
        {"role": "user", "content": [{"type": "audio"}]},
        {"role": "user", "content": [{"type": "text", "text": "x"}], "images": ["a.png"]},
        {"role": "user", "content": "x", "image_offsets": "0"},
        {"role": "assistant", "content": "x", "tool_calls": {"name": "f"}},
        {"role": "assistant", "content": "x", "tool_calls": [{"arguments": {}}]},
    ],
)
def test_from_dict_rejects_malformed_parts_and_calls(data: dict[str, Any]) -> None:
    with pytest.raises(TemplateError):
        ChatMessage.from_dict(data)


def test_the_official_template_as_a_models_own_template() -> None:
    # A GGUF's own template (here the official one) gets the tools too, and the contents
    # are still found in its rendering: tool results as JSON strings, pieces between images.
    tools = [{"name": "get_weather", "parameters": {"type": "object"}}]
    messages = [
        ChatMessage(S, " Be brief. "),
        ChatMessage(U, " Weather? <|eot|> "),
        ChatMessage(A, "", tool_calls=(CALL,)),
        ChatMessage(T, 'He said "hi" <|eot|>\n'),
        ChatMessage(U, "Like  this?", images=("a.png",), image_offsets=(5,)),
    ]
    fmt = PromptFormat.from_model_template(
        official.source(), bos_token=official.BOS, eos_token="<|eot|>"
    )
    assert fmt.render(messages, tools=tools) == official.render(messages, tools)
    segments = render_chat_template_segments(
        official.source(), messages, bos_token=official.BOS, tools=tools
    )
    assert [text for text, is_format in segments if not is_format] == [
        "Be brief.",
        "Weather? <|eot|>",  # trimmed: it follows the tools
        'He said \\"hi\\" <|eot|>\\n',  # inside tojson's quotes
        "Like ",
        " this?",
    ]
    assert ("<|image|>", True) in segments
