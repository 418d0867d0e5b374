"""Continue: the prompt leaves the last reply open (no end of turn after it), in every format.

Llama 4's is compared with the official template rendered as transformers'
``apply_chat_template(..., continue_final_message=True)`` renders it; a model's own template
is cut after the reply's text, or refused when it cannot be.
"""

from __future__ import annotations

import dataclasses

import pytest

from app.core import events as ev
from app.core.chat.continuation import continuable, continued
from app.core.chat.llama4_format import EOT, render_llama4, render_llama4_segments
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.prompt_format import PromptFormat
from app.core.chat.store_schema import MessageState, ReplyStats, StoredMessage
from app.core.chat.tools import ToolCall
from app.core.errors import TemplateError
from tests.core import official_template

CHAT = [
    ChatMessage(Role.SYSTEM, "Be brief."),
    ChatMessage(Role.USER, "Tell me a story."),
    ChatMessage(Role.ASSISTANT, "Once upon a time, a llama"),
]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TRIMMING = (  # as Gemma's: contents trimmed, the turn closed by <end_of_turn>
    "{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] | trim }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
HIDING = (  # a template that writes no assistant text: nothing to continue after
    "{% for m in messages %}<|{{ m['role'] }}|>{% if m['role'] != 'assistant' %}"
    "{{ m['content'] }}{% endif %}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _transformers_continue(rendered: str, final: str) -> str:
    """transformers' cut for ``continue_final_message`` (``apply_chat_template``)."""
    location = rendered.rindex(final.strip())
    if rendered[location : location + len(final.lstrip())] == final:
        return rendered[: location + len(final.lstrip())]
    return rendered[: location + len(final.strip())]


def test_llama4_leaves_the_last_reply_open_as_transformers_does() -> None:
    prompt = render_llama4(CHAT, continue_final_message=True)
    assert prompt.endswith("<|header_start|>assistant<|header_end|>\n\nOnce upon a time, a llama")
    assert prompt.count(EOT) == 2  # the system prompt's and the question's: none after the reply
    official = official_template.render(CHAT, add_generation_prompt=False)
    assert prompt == _transformers_continue(official, CHAT[-1].content)
    # the reply's text stays content (plain text), the last segment of the prompt
    assert render_llama4_segments(CHAT, continue_final_message=True)[-1] == (
        CHAT[-1].content,
        False,
    )


def test_llama4_keeps_a_replys_trailing_space_and_refuses_what_is_no_reply() -> None:
    spaced = [*CHAT[:-1], ChatMessage(Role.ASSISTANT, "Once upon ")]
    assert render_llama4(spaced, continue_final_message=True).endswith("\n\nOnce upon ")
    with pytest.raises(TemplateError, match="does not end with one"):
        render_llama4(CHAT[:-1], continue_final_message=True)
    call = ToolCall("get_weather", {"city": "Lima"})
    calling = [*CHAT[:-1], ChatMessage(Role.ASSISTANT, "", tool_calls=(call,))]
    with pytest.raises(TemplateError, match="tool"):
        render_llama4(calling, continue_final_message=True)
    waiting = [*CHAT[:-1], ChatMessage(Role.ASSISTANT, "x", expects_tool_result=True)]
    with pytest.raises(TemplateError, match="tool"):
        render_llama4(waiting, continue_final_message=True)


def test_a_model_template_is_rendered_without_the_generation_prompt_and_cut() -> None:
    chatml = PromptFormat.from_model_template(CHATML, eos_token="<|im_end|>")
    assert chatml.continue_problem() == ""
    prompt = chatml.render(CHAT, continue_final_message=True)
    assert prompt.endswith("<|im_start|>assistant\nOnce upon a time, a llama")
    assert prompt.count("<|im_end|>") == 2
    segments = chatml.render_segments(CHAT, continue_final_message=True)
    assert segments[-1] == (CHAT[-1].content, False)
    trimming = PromptFormat.from_model_template(TRIMMING)
    spaced = [*CHAT[:-1], ChatMessage(Role.ASSISTANT, "  Once upon \n")]
    assert trimming.render(spaced, continue_final_message=True).endswith("assistant\nOnce upon")
    assert trimming.continue_problem() == ""


def test_a_template_that_cannot_be_cut_is_refused_and_says_so() -> None:
    hiding = PromptFormat.from_model_template(HIDING)
    with pytest.raises(TemplateError, match="cannot leave its last reply open"):
        hiding.render(CHAT, continue_final_message=True)
    assert "cannot leave its last reply open" in hiding.continue_problem()
    assert "no chat template" in PromptFormat.completion_only().continue_problem()
    assert PromptFormat.llama4().continue_problem() == ""


def _stored(role: Role, content: str, **kw: object) -> StoredMessage:
    return StoredMessage(1, 1, 0, role, content, **kw)  # type: ignore[arg-type]


def test_only_a_written_reply_can_be_continued() -> None:
    reply = _stored(Role.ASSISTANT, "Once", stats=ReplyStats(generated_tokens=3))
    assert continuable([_stored(Role.USER, "hi"), reply]) is reply
    assert continuable([reply, _stored(Role.USER, "hi")]) is None
    assert continuable([]) is None
    assert continuable([dataclasses.replace(reply, content="")]) is None
    assert continuable([dataclasses.replace(reply, expects_tool_result=True)]) is None
    assert continuable([dataclasses.replace(reply, state=MessageState.STREAMING)]) is None
    incomplete = dataclasses.replace(reply, state=MessageState.INCOMPLETE)
    assert continuable([incomplete]) is incomplete  # a reply cut off is what Continue is for


def test_the_whole_reply_counts_both_parts() -> None:
    before = _stored(
        Role.ASSISTANT, "Once", stats=ReplyStats(generated_tokens=3, first_token_s=0.4)
    )
    more = ev.Finished(40, 5, 100.0, 20.0, ev.StopReason.MAX_TOKENS, 0.1, " upon a time")
    whole = continued(before, more)
    assert (whole.text, whole.generated_tokens) == ("Once upon a time", 8)
    assert whole.time_to_first_token_s == 0.4  # the wait for the reply's first word
    assert (whole.decode_tok_s, whole.stop_reason) == (20.0, ev.StopReason.MAX_TOKENS)
