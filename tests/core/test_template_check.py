"""Sandboxed rendering of a model's own chat template and the check against Llama 4."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from app.core.chat.formats import choose_format
from app.core.chat.llama4_format import render_llama4
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.prompt_format import PromptFormatKind
from app.core.chat.template_check import (
    PROBE_MESSAGES,
    check_model_template,
    render_chat_template,
    render_chat_template_segments,
)
from app.core.chat.template_compare import compare_with_llama4
from app.core.chat.template_probe import ProbeVerdict
from app.core.errors import TemplateError
from app.core.gguf.info import GGUFInfo
from app.core.settings import TemplateChoice

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "llama4_official_template.jinja"

BOS = "<|begin_of_text|>"

# The official Llama 4 template, exactly as transformers ships it (see the fixture's README).
OFFICIAL = FIXTURE.read_text(encoding="utf-8")

# What llama.cpp's built-in "llama4" template does: no BOS (the tokenizer adds it) and every
# message trimmed.
TRIM_EVERYTHING = r"""
{%- for message in messages %}
    {{- '<|header_start|>' + message['role'] + '<|header_end|>\n\n' }}
    {%- if message['content'] is string %}
        {{- message['content'] | trim }}
    {%- else %}
        {%- for part in message['content'] %}
            {%- if part['type'] == 'image' %}
                {{- '<|image|>' }}
            {%- else %}
                {{- part['text'] | trim }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
    {{- '<|eot|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|header_start|>assistant<|header_end|>\n\n' }}
{%- endif %}
"""

USER = [ChatMessage(Role.USER, "x")]


def test_official_template_matches() -> None:
    result = compare_with_llama4(OFFICIAL)
    assert result.matches
    assert result.first_diff is None
    assert result.warning is None
    assert not result.bos_added
    assert result.notes == ()
    assert result.ours == result.theirs == render_llama4(PROBE_MESSAGES)


def test_probe_spelled_out() -> None:
    assert render_llama4(PROBE_MESSAGES) == (
        "<|begin_of_text|>"
        "<|header_start|>system<|header_end|>\n\nYou are Herd\u2019s careful assistant.<|eot|>"
        "<|header_start|>user<|header_end|>\n\n<|image|> What is in this picture?\n<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\nA red ball on green grass.  \n<|eot|>"
        "<|header_start|>user<|header_end|>\n\n\tIs the ball big? <|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )


def test_template_without_bos_is_prefixed_not_flagged() -> None:
    result = compare_with_llama4(OFFICIAL, bos_token="")
    assert result.matches
    assert result.bos_added
    assert len(result.notes) == 1
    assert "<|begin_of_text|>" in result.notes[0]
    assert "prefixed" in result.notes[0]


def test_double_bos_is_a_mismatch() -> None:
    result = compare_with_llama4("{{ bos_token }}" + OFFICIAL)
    assert not result.matches
    # "<|" of the second BOS still equals the start of "<|header_start|>".
    assert result.first_diff == len(BOS) + 2
    assert result.theirs_excerpt == "<|begin_of_text|><|begin_of_text|><|header_..."


def test_llama_cpp_style_trimming_is_caught_at_the_right_byte() -> None:
    result = compare_with_llama4(TRIM_EVERYTHING)
    assert not result.matches
    assert result.bos_added
    same_prefix = (
        "<|begin_of_text|>"
        "<|header_start|>system<|header_end|>\n\nYou are Herd\u2019s careful assistant.<|eot|>"
        "<|header_start|>user<|header_end|>\n\n<|image|>"
    )
    # The offset counts UTF-8 bytes (the apostrophe is three bytes), not characters.
    assert len(same_prefix.encode("utf-8")) == len(same_prefix) + 2
    assert result.first_diff == len(same_prefix.encode("utf-8"))
    assert "\\n\\n<|image|> What is" in result.ours_excerpt
    assert "\\n\\n<|image|>What is" in result.theirs_excerpt
    assert result.ours_excerpt.startswith("...") and result.ours_excerpt.endswith("...")
    assert result.warning is not None
    assert result.warning.startswith(
        "The model's own chat template differs from Llama 4's official format at byte "
        f"{result.first_diff}: official '{result.ours_excerpt}' vs model's "
        f"'{result.theirs_excerpt}'"
    )


def test_untrimmed_system_prompt_is_caught() -> None:
    template = OFFICIAL.replace("messages[0]['content']|trim", "messages[0]['content']")
    result = compare_with_llama4(template)
    assert not result.matches
    assert result.first_diff == len(f"{BOS}<|header_start|>system<|header_end|>\n\n")
    assert "<|header_end|>\\n\\nYou are Herd\u2019s" in result.ours_excerpt
    assert "<|header_end|>\\n\\n  You are Herd\u2019s" in result.theirs_excerpt


def test_missing_generation_prompt_is_caught() -> None:
    template = OFFICIAL.replace("{%- if add_generation_prompt %}", "{%- if false %}")
    result = compare_with_llama4(template)
    assert not result.matches
    without_prompt = render_llama4(PROBE_MESSAGES, add_generation_prompt=False)
    assert result.first_diff == len(without_prompt.encode("utf-8"))
    assert result.theirs_excerpt.endswith("<|eot|>")


def test_template_that_raises() -> None:
    template = "{{ raise_exception('Conversation roles must alternate user/assistant') }}"
    with pytest.raises(TemplateError, match="roles must alternate"):
        compare_with_llama4(template)


def test_syntax_error() -> None:
    with pytest.raises(TemplateError, match="syntax error on line 1"):
        render_chat_template("{% for %}", USER)


def test_python_error_inside_template() -> None:
    with pytest.raises(TemplateError, match="TypeError"):
        render_chat_template("{{ messages[0]['content'] + 1 }}", USER)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ messages.__class__.__base__.__subclasses__() }}",
        "{{ raise_exception.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{% if ''.__class__ %}{% endif %}",
        "{{ messages.append({'role': 'user', 'content': 'injected'}) }}",
        "{{ messages[0].update({'role': 'system'}) }}",
    ],
)
def test_sandbox_escape_is_refused(template: str) -> None:
    with pytest.raises(TemplateError, match="sandbox"):
        render_chat_template(template, USER)
    with pytest.raises(TemplateError, match="sandbox"):
        compare_with_llama4(template)


def test_hf_environment_features() -> None:
    assert render_chat_template("{{ {'a': '<b> & c'} | tojson }}", USER) == '{"a": "<b> & c"}'
    assert render_chat_template("{{ [1] | tojson(indent=2) }}", USER) == "[\n  1\n]"
    assert render_chat_template("{{ 'caf\u00e9' | tojson }}", USER) == '"caf\u00e9"'
    assert (
        render_chat_template(
            "{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}",
            USER,
        )
        == "x"
    )
    two = [ChatMessage(Role.USER, "a"), ChatMessage(Role.USER, "b")]
    assert (
        render_chat_template(
            "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}"
            "{{ m.content }}{% endfor %}",
            two,
        )
        == "a"
    )
    year = render_chat_template("{{ strftime_now('%Y') }}", USER)
    assert year in {str(datetime.now().year - 1), str(datetime.now().year)}
    assert (
        render_chat_template(
            "{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ date_string }}",
            USER,
            bos_token="<s>",
            eos_token="</s>",
            add_generation_prompt=False,
            extra={"date_string": "26 Jul 2024"},
        )
        == "<s>|</s>|False|26 Jul 2024"
    )


def test_trim_and_lstrip_blocks_like_hugging_face() -> None:
    template = (
        "{% for m in messages %}\n    {% if true %}\n{{ m.content }}\n"
        "    {% endif %}\n{% endfor %}\n"
    )
    assert render_chat_template(template, USER) == "x\n"


def test_excerpt_escapes_invisible_characters() -> None:
    template = OFFICIAL.replace("{{- bos_token }}", "{{- bos_token + '\u00a0\\r' }}")
    result = compare_with_llama4(template)
    assert result.first_diff == len(BOS)
    assert result.theirs_excerpt.startswith("<|begin_of_text|>\\xa0\\r<|header_start|>")


@pytest.mark.skipif(
    not FIXTURE.exists(), reason="tests/fixtures/llama4_official_template.jinja absent"
)
def test_check_model_template_verdicts() -> None:
    rendered = check_model_template(OFFICIAL, bos_token=BOS)
    assert rendered.verdict is ProbeVerdict.RENDERED and rendered.usable
    assert rendered.text() == render_llama4(PROBE_MESSAGES)
    refused = check_model_template("{{ raise_exception('no system messages') }}")
    assert refused.verdict is ProbeVerdict.REFUSED and refused.usable  # a real chat may pass
    assert "no system messages" in refused.user_message
    broken = check_model_template("{% for %}")
    assert broken.verdict is ProbeVerdict.BROKEN and not broken.usable
    with pytest.raises(TemplateError, match="syntax error on line 1"):
        broken.text()


def _info(template: str, arch: str) -> GGUFInfo:
    path = Path("model.gguf")
    meta = {"general.architecture": arch, "tokenizer.chat_template": template}
    return GGUFInfo(path, (path,), 3, meta, (), 0, (0,), 32)


def test_a_usable_template_is_still_chosen() -> None:
    fmt, warnings = choose_format(_info(TRIM_EVERYTHING, "llama4"), TemplateChoice.MODEL)
    assert fmt.kind is PromptFormatKind.MODEL_TEMPLATE
    assert "as chosen in the settings" in warnings[0]
    assert fmt.render(USER).endswith(
        "<|header_start|>user<|header_end|>\n\nx<|eot|><|header_start|>assistant<|header_end|>\n\n"
    )
    fmt, warnings = choose_format(_info(OFFICIAL, "llama"), bos_token="<s>")
    assert fmt.kind is PromptFormatKind.MODEL_TEMPLATE and warnings == []
    assert fmt.render(USER).startswith("<s><|header_start|>user")


def test_segments_share_one_deadline() -> None:
    # both renders of render_chat_template_segments together stay within the 2 s
    slow = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    start = time.monotonic()
    with pytest.raises(TemplateError, match="still running after 2 s"):
        render_chat_template_segments(slow, USER, deadline=time.monotonic() + 0.3)
    assert time.monotonic() - start < 1.0
