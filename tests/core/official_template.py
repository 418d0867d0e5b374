"""The official Llama 4 chat template, rendered exactly the way Hugging Face transformers does.

Test-only reference: transformers' ``render_jinja_template`` / ``_compile_jinja_template``
(``src/transformers/utils/chat_template_utils.py``): an ``ImmutableSandboxedEnvironment``
with ``trim_blocks``, ``lstrip_blocks`` and the ``loopcontrols`` extension, its own
``tojson`` filter (``json.dumps``, no HTML escaping), ``raise_exception`` and
``strftime_now``; rendered with ``messages``, ``tools``, ``documents=None``,
``add_generation_prompt`` and the tokenizer's special tokens. The template itself is
``tests/fixtures/llama4_official_template.jinja`` (source and commit in its README).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.core.chat.messages import ChatMessage, to_template_dicts

PATH = Path(__file__).resolve().parents[1] / "fixtures" / "llama4_official_template.jinja"
SHA256 = "95a231a15c8c976ac511e62c6fdf477ea9e3ca7a87cbb9974e0dd653eccb4563"
BOS = "<|begin_of_text|>"


def source() -> str:
    """The template's text, byte for byte."""
    return PATH.read_bytes().decode("utf-8")


def _tojson(
    x: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> NoReturn:
    raise jinja2.exceptions.TemplateError(message)


@cache
def _compiled() -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source())


def render_dicts(
    messages: list[dict[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
) -> str:
    """The official rendering of Hugging Face-style message dicts."""
    return _compiled().render(
        messages=messages,
        tools=None if tools is None else list(tools),
        documents=None,
        add_generation_prompt=add_generation_prompt,
        bos_token=BOS,
        eos_token="<|eot|>",
        pad_token="<|finetune_right_pad|>",
    )


def render(
    messages: Sequence[ChatMessage],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
) -> str:
    """The official rendering of Herd's messages (as :func:`to_template_dicts` gives them)."""
    return render_dicts(
        to_template_dicts(messages), tools, add_generation_prompt=add_generation_prompt
    )
