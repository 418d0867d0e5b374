"""A Llama 4 GGUF whose own template differs from the official format: warned, chosen."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core import events as ev
from app.core.chat.messages import ChatMessage, Role
from app.core.engine.client import EngineClient
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings, TemplateChoice
from tests.fixtures.tiny_llama4 import make_tiny_llama4

# llama.cpp's built-in llama4 template trims every message; the official one trims only
# the system prompt. This is that trimming variant, as a GGUF might carry it.
TRIMMING_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for m in messages -%}"
    "{{- '<|header_start|>' + m['role'] + '<|header_end|>\\n\\n' -}}"
    "{%- if m['content'] is string -%}{{- m['content'] | trim -}}"
    "{%- else -%}{%- for part in m['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{- '<|image|>' -}}"
    "{%- else -%}{{- part['text'] | trim -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|eot|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|header_start|>assistant<|header_end|>\\n\\n' -}}"
    "{%- endif -%}"
)


@pytest.fixture(scope="module")
def trimming_scout(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trim") / "tiny-scout-trimming-template.gguf"
    return make_tiny_llama4(path, chat_template=TRIMMING_TEMPLATE)


def _load(client: EngineClient, path: Path, choice: TemplateChoice) -> ev.ModelFacts:
    settings = LoadSettings(n_ctx=512, n_threads=2, template=choice)
    events = list(client.load(path, settings))
    assert isinstance(events[-1], ev.Loaded), events[-1]
    return events[-1].facts


def test_mismatching_template_is_warned_with_the_first_differing_byte(
    tmp_path: Path, trimming_scout: Path
) -> None:
    with EngineClient(AppPaths.under(tmp_path)) as client:
        facts = _load(client, trimming_scout, TemplateChoice.HERD)
        assert facts.prompt_format == "Llama 4 (official)" or "Llama 4" in facts.prompt_format
        assert len(facts.warnings) == 1
        warning = facts.warnings[0]
        assert "differs from Llama 4's official format at byte" in warning
        # Herd still renders the official format: the user text keeps its edge whitespace.
        messages = [ChatMessage(Role.USER, "  hi  ")]
        official = client.count_tokens(messages=messages)
        assert client.prompt_format is not None
        assert "  hi  <|eot|>" in client.prompt_format.render(messages)

        facts = _load(client, trimming_scout, TemplateChoice.MODEL)
        assert "model's template" in facts.warnings[0]
        assert client.prompt_format.render(messages).endswith(
            "<|header_start|>user<|header_end|>\n\nhi<|eot|>"
            "<|header_start|>assistant<|header_end|>\n\n"
        )
        assert client.count_tokens(messages=messages) < official
        # and chat works with the chosen template
        last = list(client.chat(messages, SamplingSettings(max_tokens=4, seed=1)))[-1]
        assert isinstance(last, ev.Finished)


def test_official_template_gives_no_warning(tmp_path: Path, tiny_scout: Path) -> None:
    with EngineClient(AppPaths.under(tmp_path)) as client:
        facts = _load(client, tiny_scout, TemplateChoice.HERD)
        assert facts.warnings == ()


TEMPLATE_BOMBS = {
    "nested-loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        "ran past Herd's limits of 2 s / 256 MiB: it was still running after 2 s",
    ),
    "huge-constant": (  # stock Jinja folds it while compiling: 10 GB
        "{{ 'x' * 10**10 }}",
        "ran past Herd's limits of 2 s / 256 MiB: it would build a value of 10,000,000,000",
    ),
    "syntax-error": ("{% for %}", "syntax error on line 1"),
}


@pytest.mark.parametrize("bomb", list(TEMPLATE_BOMBS))
def test_template_bomb_is_warned_and_the_model_chats_in_herds_format(
    tmp_path: Path, bomb: str
) -> None:
    template, cause = TEMPLATE_BOMBS[bomb]
    path = make_tiny_llama4(tmp_path / f"tiny-scout-{bomb}.gguf", chat_template=template)
    with EngineClient(AppPaths.under(tmp_path)) as client:
        facts = _load(client, path, TemplateChoice.MODEL)  # even when the file's is chosen
        assert facts.prompt_format == "Llama 4 (official)"
        assert len(facts.warnings) == 1
        assert cause in facts.warnings[0]
        assert "Herd uses Llama 4's official format" in facts.warnings[0]
        messages = [ChatMessage(Role.USER, "  hi  ")]
        assert client.prompt_format is not None
        assert "  hi  <|eot|>" in client.prompt_format.render(messages)
        last = list(client.chat(messages, SamplingSettings(max_tokens=4, seed=1)))[-1]
        assert isinstance(last, ev.Finished)
