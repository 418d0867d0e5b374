"""The template check's probe conversations: no system prompt, a tool round, placed images.

A template that differs from the official one only there (a default system prompt, Meta's
reference style of tool calls, images always first, no tool messages at all) must not pass
as matching; the official template itself must.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.chat.formats import choose_format
from app.core.chat.llama4_format import render_llama4
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.prompt_format import PromptFormatKind
from app.core.chat.template_compare import PROBES, compare_with_llama4
from app.core.gguf.info import GGUFInfo
from app.core.settings import TemplateChoice
from tests.core import official_template as official

OFFICIAL = official.source()
BOS = official.BOS


def _variant(*replacements: tuple[str, str]) -> str:
    template = OFFICIAL
    for old, new in replacements:
        assert old in template, old
        template = template.replace(old, new)
    return template


DEFAULT_SYSTEM_PROMPT = _variant(
    (
        '{%- set system_message = "" %}\n    {%- set user_supplied_system_message = false %}',
        '{%- set system_message = "You are a helpful assistant." %}\n'
        "    {%- set user_supplied_system_message = true %}",
    )
)
# Meta's llama-models style: a tool call ends with <|eom|>, a result is written raw.
METAS_TOOL_STYLE = _variant(
    ('       {{- "<|eot|>" }}\n    {%- elif message.role == "tool"', "       {{- \"<|eom|>\" }}\n"
     '    {%- elif message.role == "tool"'),
    ("{{- message.content | tojson }}", "{{- message.content }}"),
)  # fmt: skip
IMAGES_FIRST = _variant(
    (
        "{%- for content in message['content'] %}\n"
        "                {%- if content['type'] == 'image' %}\n"
        "                    {{- '<|image|>' }}\n"
        "                {%- elif content['type'] == 'text' %}\n"
        "                    {{- content['text'] }}\n"
        "                {%- endif %}\n"
        "            {%- endfor %}",
        "{%- for content in message['content'] if content['type'] == 'image' %}"
        "{{- '<|image|>' }}{%- endfor %}"
        "{%- for content in message['content'] if content['type'] == 'text' %}"
        "{{- content['text'] }}{%- endfor %}",
    )
)
NO_TOOL_MESSAGES = (
    "{%- for m in messages %}{%- if m.role == 'tool' %}"
    "{{- raise_exception('Tool messages are not supported') }}"
    "{%- endif %}{%- endfor %}" + OFFICIAL
)


def test_the_official_template_matches_on_every_probe() -> None:
    result = compare_with_llama4(OFFICIAL)
    assert result.matches and result.warning is None and result.probe == ""
    assert result.ours == render_llama4(PROBES[0].messages)
    names = [probe.name for probe in PROBES]
    assert names == ["", "without a system prompt", "with a tool call"]
    assert PROBES[1].messages[0].role is Role.USER
    assert PROBES[1].messages[0].image_offsets  # images between pieces of text
    assert PROBES[2].tools and any(m.tool_calls for m in PROBES[2].messages)
    assert any(m.role is Role.IPYTHON for m in PROBES[2].messages)


def test_every_probe_renders_as_the_official_template() -> None:
    for probe in PROBES:
        assert render_llama4(probe.messages, tools=probe.tools) == official.render(
            probe.messages, probe.tools
        )


def test_a_default_system_prompt_is_caught() -> None:
    result = compare_with_llama4(DEFAULT_SYSTEM_PROMPT)
    assert not result.matches
    assert result.probe == "without a system prompt"
    assert result.first_diff == len(f"{BOS}<|header_start|>")
    assert "<|header_start|>system<|header_end|>" in result.theirs_excerpt
    assert "<|header_start|>user<|header_end|>" in result.ours_excerpt
    assert result.warning is not None
    assert result.warning.startswith(
        "The model's own chat template differs from Llama 4's official format at byte "
        f"{result.first_diff} of a conversation without a system prompt: official '"
    )
    assert result.warning.endswith("Herd uses the official format.")


def test_metas_tool_style_is_caught() -> None:
    result = compare_with_llama4(METAS_TOOL_STYLE)
    assert not result.matches and result.probe == "with a tool call"
    assert result.first_diff is not None
    diff_at = len(result.ours.encode()[: result.first_diff].decode())
    assert result.ours[diff_at - 4 :].startswith("<|eot|><|header_start|>ipython")
    assert result.theirs[diff_at - 4 :].startswith("<|eom|><|header_start|>ipython")
    assert "of a conversation with a tool call" in (result.warning or "")


def test_raw_tool_results_alone_are_caught() -> None:
    template = _variant(("{{- message.content | tojson }}", "{{- message.content }}"))
    result = compare_with_llama4(template)
    assert not result.matches and result.probe == "with a tool call"
    assert '<|header_end|>\\n\\n"{\\\\"temperature' in result.ours_excerpt
    assert '<|header_end|>\\n\\n{"temperature' in result.theirs_excerpt


def test_images_always_first_are_caught() -> None:
    result = compare_with_llama4(IMAGES_FIRST)
    assert not result.matches and result.probe == "without a system prompt"
    assert "Compare <|image|>" in result.ours_excerpt.replace("\\n", "")


def test_a_template_that_cannot_render_a_tool_round_is_warned() -> None:
    result = compare_with_llama4(NO_TOOL_MESSAGES)
    assert not result.matches and result.first_diff is None
    assert result.probe == "with a tool call"
    assert result.warning is not None
    assert result.warning.startswith(
        "The model's own chat template cannot render a conversation with a tool call (it fails:"
    )
    assert "Tool messages are not supported" in result.warning
    assert result.warning.endswith(". Herd uses the official format.")


def _info(template: str) -> GGUFInfo:
    path = Path("model.gguf")
    meta = {"general.architecture": "llama4", "tokenizer.chat_template": template}
    return GGUFInfo(path, (path,), 3, meta, (), 0, (0,), 32)


@pytest.mark.parametrize(
    "template", [DEFAULT_SYSTEM_PROMPT, METAS_TOOL_STYLE, IMAGES_FIRST, NO_TOOL_MESSAGES]
)
def test_such_templates_are_warned_at_load(template: str) -> None:
    fmt, warnings = choose_format(_info(template), bos_token=BOS)
    assert fmt.kind is PromptFormatKind.LLAMA4 and len(warnings) == 1
    assert warnings[0].endswith("Herd uses the official format.")
    fmt, warnings = choose_format(_info(template), TemplateChoice.MODEL, bos_token=BOS)
    assert fmt.kind is PromptFormatKind.MODEL_TEMPLATE
    assert warnings[0].endswith("Herd uses the model's template, as chosen in the settings.")


def test_the_official_template_loads_without_a_warning() -> None:
    fmt, warnings = choose_format(_info(OFFICIAL), bos_token=BOS)
    assert fmt.kind is PromptFormatKind.LLAMA4 and warnings == []
    messages = [ChatMessage(Role.USER, "Hi")]
    assert fmt.render(messages) == official.render(messages)
