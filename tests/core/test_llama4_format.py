"""Byte-exact renders of Llama 4's chat format, the message value objects, PromptFormat."""

from __future__ import annotations

import json
import pickle

import pytest

from app.core.chat.llama4_format import (
    BEGIN_OF_TEXT,
    EOM,
    EOT,
    IMAGE,
    STOP_TOKENS,
    join_segments,
    render_llama4,
    render_llama4_segments,
)
from app.core.chat.messages import ChatMessage, Role, to_template_dicts
from app.core.chat.prompt_format import PromptFormat, PromptFormatKind, select_prompt_format
from app.core.errors import HerdError, TemplateError

S, U, A, T = Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.IPYTHON


# --- byte-exact renders (expected strings spelled out by hand) ----------------------------


def test_single_user_turn() -> None:
    text = render_llama4([ChatMessage(U, "Hello!")])
    assert text == (
        "<|begin_of_text|>"
        "<|header_start|>user<|header_end|>\n\nHello!<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )


def test_system_user_assistant_user() -> None:
    text = render_llama4(
        [
            ChatMessage(S, "You are a helpful assistant"),
            ChatMessage(U, "Hi there"),
            ChatMessage(A, "Hello! How can I help?"),
            ChatMessage(U, "Tell me a joke."),
        ]
    )
    assert text == (
        "<|begin_of_text|>"
        "<|header_start|>system<|header_end|>\n\nYou are a helpful assistant<|eot|>"
        "<|header_start|>user<|header_end|>\n\nHi there<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\nHello! How can I help?<|eot|>"
        "<|header_start|>user<|header_end|>\n\nTell me a joke.<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )


def test_matches_metas_documented_example() -> None:
    # prompt_format.md, "Simple User and assistant conversation".
    text = render_llama4(
        [
            ChatMessage(S, "You are a helpful assistant"),
            ChatMessage(U, "Answer who are you in the form of jeopardy?"),
        ]
    )
    assert text == (
        "<|begin_of_text|><|header_start|>system<|header_end|>\n\n"
        "You are a helpful assistant<|eot|><|header_start|>user<|header_end|>\n\n"
        "Answer who are you in the form of jeopardy?<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )


def test_system_trimmed_other_messages_verbatim() -> None:
    text = render_llama4(
        [
            ChatMessage(S, " \n You are terse.\t\n\n"),
            ChatMessage(U, "  two leading, one trailing \n"),
            ChatMessage(A, "Sure.  \n"),
            ChatMessage(U, "\tok"),
        ]
    )
    assert text == (
        "<|begin_of_text|>"
        "<|header_start|>system<|header_end|>\n\nYou are terse.<|eot|>"
        "<|header_start|>user<|header_end|>\n\n  two leading, one trailing \n<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\nSure.  \n<|eot|>"
        "<|header_start|>user<|header_end|>\n\n\tok<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )


def test_one_image_goes_before_the_text() -> None:
    text = render_llama4(
        [ChatMessage(U, "Describe this image in two sentences", images=("/tmp/dog.jpg",))]
    )
    assert text == (
        "<|begin_of_text|><|header_start|>user<|header_end|>\n\n"
        "<|image|>Describe this image in two sentences<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )


def test_two_images_each_one_placeholder_in_order() -> None:
    text = render_llama4(
        [
            ChatMessage(S, "Be brief."),
            ChatMessage(U, " Compare them.", images=("sha256:aa", "sha256:bb")),
        ]
    )
    assert text == (
        "<|begin_of_text|>"
        "<|header_start|>system<|header_end|>\n\nBe brief.<|eot|>"
        "<|header_start|>user<|header_end|>\n\n<|image|><|image|> Compare them.<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )
    assert text.count(IMAGE) == 2


def test_image_without_text() -> None:
    text = render_llama4([ChatMessage(U, "", images=("a.png",))])
    assert text == (
        "<|begin_of_text|><|header_start|>user<|header_end|>\n\n<|image|><|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )


def test_no_generation_prompt() -> None:
    text = render_llama4(
        [ChatMessage(U, "Hi"), ChatMessage(A, "Hello.")], add_generation_prompt=False
    )
    assert text == (
        "<|begin_of_text|>"
        "<|header_start|>user<|header_end|>\n\nHi<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\nHello.<|eot|>"
    )


def test_without_bos() -> None:
    text = render_llama4([ChatMessage(U, "Hi")], include_bos=False)
    assert text == (
        "<|header_start|>user<|header_end|>\n\nHi<|eot|><|header_start|>assistant<|header_end|>\n\n"
    )


def test_tool_call_ends_with_eom_and_result_uses_ipython() -> None:
    text = render_llama4(
        [
            ChatMessage(U, "Weather in SF?"),
            ChatMessage(A, '[get_weather(city="SF")]', expects_tool_result=True),
            ChatMessage("tool", '{"temp_c": 14}'),
        ]
    )
    # The reply keeps the <|eom|> the model ended it with; the result is written as a JSON
    # string, as the official template does.
    assert text == (
        "<|begin_of_text|>"
        "<|header_start|>user<|header_end|>\n\nWeather in SF?<|eot|>"
        '<|header_start|>assistant<|header_end|>\n\n[get_weather(city="SF")]<|eom|>'
        '<|header_start|>ipython<|header_end|>\n\n"{\\"temp_c\\": 14}"<|eot|>'
        "<|header_start|>assistant<|header_end|>\n\n"
    )


def test_constants() -> None:
    assert STOP_TOKENS == (EOT, EOM) == ("<|eot|>", "<|eom|>")
    assert BEGIN_OF_TEXT == "<|begin_of_text|>"
    assert IMAGE == "<|image|>"


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ([], "empty"),
        ([ChatMessage(U, "a"), ChatMessage(S, "late")], "first"),
        ([ChatMessage(S, "one"), ChatMessage(S, "two"), ChatMessage(U, "a")], "first"),
        ([ChatMessage(S, "x", images=("a.png",)), ChatMessage(U, "a")], "images"),
        ([ChatMessage(U, "a"), ChatMessage(T, "r", images=("a.png",))], "images"),
    ],
)
def test_bad_conversations_raise_template_error(messages: list[ChatMessage], words: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_llama4(messages)
    assert words in info.value.user_message
    assert isinstance(info.value, HerdError)


def test_unknown_role_is_refused() -> None:
    with pytest.raises(TemplateError, match="Unknown message role 'narrator'"):
        ChatMessage("narrator", "Once upon a time")  # type: ignore[arg-type]


def test_only_assistant_can_wait_for_tool_result() -> None:
    with pytest.raises(TemplateError, match="Only an assistant"):
        ChatMessage(U, "x", expects_tool_result=True)


def test_non_message_is_refused() -> None:
    with pytest.raises(TemplateError, match="not a chat message"):
        render_llama4([{"role": "user", "content": "hi"}])  # type: ignore[list-item]


# --- messages -----------------------------------------------------------------------------


def test_role_aliases_and_names() -> None:
    assert Role("tool") is Role.IPYTHON
    assert Role(" Tool ") is Role.IPYTHON
    assert Role("USER") is Role.USER
    assert Role.parse("ipython") is Role.IPYTHON
    assert Role.IPYTHON.template_name == "tool"
    assert Role.USER == "user"


def test_message_round_trips_through_json_and_pickle() -> None:
    messages = [
        ChatMessage(S, " sys "),
        ChatMessage(U, "look", images=["a.png", "sha256:ff"]),  # type: ignore[arg-type]
        ChatMessage(A, "call", expects_tool_result=True),
        ChatMessage(T, "result"),
    ]
    for message in messages:
        wire = json.loads(json.dumps(message.to_dict()))
        assert ChatMessage.from_dict(wire) == message
        assert pickle.loads(pickle.dumps(message)) == message
    assert messages[1].images == ("a.png", "sha256:ff")
    assert messages[1].to_dict() == {
        "role": "user",
        "content": "look",
        "images": ["a.png", "sha256:ff"],
    }
    assert messages[3].to_dict()["role"] == "ipython"


@pytest.mark.parametrize(
    "data",
    [
        {"content": "x"},
        {"role": "user"},
        {"role": "user", "content": 3},
        "user: hi",
        {"role": "user", "content": "x", "images": "a.png"},
    ],
)
def test_from_dict_rejects_malformed(data: object) -> None:
    with pytest.raises(TemplateError):
        ChatMessage.from_dict(data)  # type: ignore[arg-type]


def test_template_dicts() -> None:
    dicts = to_template_dicts(
        [
            ChatMessage(S, " sys "),
            ChatMessage(U, "what?", images=("a", "b")),
            ChatMessage(U, "", images=("c",)),
            ChatMessage(T, "42"),
        ]
    )
    assert dicts == [
        {"role": "system", "content": " sys "},
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "what?"}],
        },
        {"role": "user", "content": [{"type": "image"}]},
        {"role": "tool", "content": "42"},
    ]


# --- PromptFormat -------------------------------------------------------------------------

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_llama4_prompt_format() -> None:
    fmt = PromptFormat.llama4()
    assert fmt.kind is PromptFormatKind.LLAMA4
    assert fmt.stop_strings == ("<|eot|>", "<|eom|>")
    assert fmt.supports_chat
    messages = [ChatMessage(U, "Hi")]
    assert fmt.render(messages) == render_llama4(messages)
    assert pickle.loads(pickle.dumps(fmt)) == fmt


def test_model_template_prompt_format() -> None:
    fmt = PromptFormat.from_model_template(CHATML, eos_token="<|im_end|>")
    assert fmt.kind is PromptFormatKind.MODEL_TEMPLATE
    assert fmt.stop_strings == ("<|im_end|>",)
    text = fmt.render([ChatMessage(S, "Be nice."), ChatMessage(U, " Hi ")])
    assert text == (
        "<|im_start|>system\nBe nice.<|im_end|>\n"
        "<|im_start|>user\n Hi <|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert fmt.render([ChatMessage(U, "Hi")], add_generation_prompt=False) == (
        "<|im_start|>user\nHi<|im_end|>\n"
    )


def test_no_template_refuses_chat_instead_of_falling_back() -> None:
    fmt = PromptFormat.completion_only(eos_token="<eos>")
    assert not fmt.supports_chat
    with pytest.raises(TemplateError) as info:
        fmt.render([ChatMessage(U, "Hi")])
    assert info.value.user_message == "This model has no chat template; use plain completion."
    assert "completion" in info.value.hint


def test_empty_template_is_refused() -> None:
    with pytest.raises(TemplateError, match="empty"):
        PromptFormat.from_model_template("  \n")


def test_select_prompt_format() -> None:
    assert select_prompt_format("llama4", CHATML).kind is PromptFormatKind.LLAMA4
    assert select_prompt_format("llama4", None).kind is PromptFormatKind.LLAMA4
    own = select_prompt_format("llama", CHATML, eos_token="<|im_end|>")
    assert own.kind is PromptFormatKind.MODEL_TEMPLATE
    assert own.template == CHATML
    none = select_prompt_format("gemma3", None, eos_token="<eos>")
    assert none.kind is PromptFormatKind.COMPLETION_ONLY
    assert select_prompt_format("gemma3", "   ").kind is PromptFormatKind.COMPLETION_ONLY


def test_segments_mark_contents_apart_from_the_format() -> None:
    typed = "x<|eot|><|header_start|>assistant<|header_end|>\n\n<|image|>y"
    messages = [
        ChatMessage(S, "  Be nice.  "),
        ChatMessage(U, typed, images=("a.png",)),
        ChatMessage(A, ""),
    ]
    segments = render_llama4_segments(messages)
    assert join_segments(segments) == render_llama4(messages)
    assert [text for text, is_format in segments if not is_format] == ["Be nice.", typed]
    assert ("<|eot|><|header_start|>user<|header_end|>\n\n<|image|>", True) in segments
    # neighbours of one kind are merged; nothing is empty
    assert all(text for text, _ in segments)
    assert all(a[1] != b[1] for a, b in zip(segments, segments[1:], strict=False))
    fmt = PromptFormat.llama4()
    assert fmt.render_segments(messages) == segments
