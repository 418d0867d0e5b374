"""Render a GGUF's own Jinja chat template safely, and check it on probe conversations.

Templates come from downloaded files, so they run in a metered Jinja sandbox set up the
way Hugging Face transformers renders chat templates (:mod:`template_sandbox`), bounded to
2 s and 256 MiB. A template's first render, the check at load, runs in a child process
(:mod:`template_probe`), whose verdict decides whether Herd renders it in its own process
later. Any failure becomes a :class:`~app.core.errors.TemplateError`. The comparison with
Llama 4's official format is :mod:`template_compare`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from app.core.chat.llama4_format import Segment, merge_segments
from app.core.chat.messages import ChatMessage, Role, to_template_dicts
from app.core.chat.template_budget import TIME_LIMIT_S
from app.core.chat.template_probe import ProbeResult, probe_template
from app.core.chat.template_sandbox import render_template
from app.core.errors import TemplateError

__all__ = [
    "PROBE_MESSAGES",
    "check_model_template",
    "render_chat_template",
    "render_chat_template_segments",
]

logger = logging.getLogger(__name__)

PROBE_MESSAGES: tuple[ChatMessage, ...] = (
    ChatMessage(Role.SYSTEM, "  You are Herd\u2019s careful assistant.\n\n"),
    ChatMessage(Role.USER, " What is in this picture?\n", images=("probe-image.png",)),
    ChatMessage(Role.ASSISTANT, "A red ball on green grass.  \n"),
    ChatMessage(Role.USER, "\tIs the ball big? "),
)
"""The conversation a template must render to be usable, and the first one it is compared
on with the official format: whitespace at the edges of every message (only the system
prompt is trimmed by the official format), a non-ASCII character (so byte and character
offsets differ), an image, two user turns and a generation prompt."""


def _context(
    messages: Sequence[ChatMessage],
    add_generation_prompt: bool,
    bos_token: str,
    eos_token: str,
    extra: Mapping[str, Any] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = dict(extra or {})
    context.update(
        messages=to_template_dicts(messages),
        add_generation_prompt=add_generation_prompt,
        bos_token=bos_token,
        eos_token=eos_token,
    )
    if tools is not None:
        context["tools"] = [dict(tool) for tool in tools]
    return context


def render_chat_template(
    template: str,
    messages: Sequence[ChatMessage],
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
    extra: Mapping[str, Any] | None = None,
    deadline: float | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """Render a model's own Jinja chat template in the metered sandbox, in this process.

    Use it on a template :func:`check_model_template` found usable: the sandbox bounds
    time and memory from inside Python, the check also what it cannot.

    Args:
        template: The Jinja source (``tokenizer.chat_template``).
        messages: The conversation; turned into HF-style dicts by ``to_template_dicts``.
        add_generation_prompt: Ask the template to end with the assistant's header.
        bos_token: Passed to the template as ``bos_token``.
        eos_token: Passed to the template as ``eos_token``.
        extra: More template variables (e.g. ``date_string``).
        deadline: ``time.monotonic()`` by which it must be done; 2 s from now when None.
        tools: Tool definitions, passed as ``tools`` (left undefined when None).

    Returns:
        The rendered text, exactly as the template produced it.

    Raises:
        TemplateError: The template does not compile, refuses the conversation
            (``raise_exception``), tries to escape the sandbox, runs past 2 s / 256 MiB,
            or fails in any other way.
    """
    context = _context(messages, add_generation_prompt, bos_token, eos_token, extra, tools)
    return render_template(template, context, deadline=deadline)


def check_model_template(
    template: str,
    *,
    bos_token: str = "",
    eos_token: str = "",
    messages: Sequence[ChatMessage] = PROBE_MESSAGES,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> ProbeResult:
    """Render a probe conversation with a model's template in a bounded child process.

    The first thing Herd does with a file's template; cached per template, tokens and
    conversation.

    Args:
        template: A GGUF's ``tokenizer.chat_template``.
        bos_token: What the template gets as ``bos_token``.
        eos_token: What the template gets as ``eos_token``.
        messages: The conversation (with a generation prompt); :data:`PROBE_MESSAGES`
            decides whether the template is usable at all.
        tools: Tool definitions for the template's ``tools``, or None.

    Returns:
        The verdict (:attr:`ProbeResult.usable`: Herd may render it in its own process)
        and the rendering.
    """
    context = _context(messages, True, bos_token, eos_token, tools=tools)
    return probe_template(template, context)


def render_chat_template_segments(
    template: str,
    messages: Sequence[ChatMessage],
    **kwargs: Any,
) -> list[Segment]:
    """Render a model's own template as format text and message contents.

    The template is rendered twice: as is, and with each piece of message text (the text
    between images) replaced by a unique sentinel. The sentinels mark where contents sit in
    the real rendering (a template may trim them or write them as JSON strings, so those
    forms are tried too); the rest is the template's own text, tool definitions and call
    arguments included. When the two renderings cannot be lined up (the template
    transforms or inspects contents in other ways), the whole prompt is returned as format
    text, as before, and a warning is logged: special tokens typed into messages are then
    parsed.

    Args:
        template: The Jinja source.
        messages: The conversation.
        **kwargs: As :func:`render_chat_template`.

    Raises:
        TemplateError: As :func:`render_chat_template`.
    """
    kwargs.setdefault("deadline", time.monotonic() + TIME_LIMIT_S)  # both renders together
    text = render_chat_template(template, messages, **kwargs)
    nonce = secrets.token_hex(8)
    marked_messages, contents = _marked(messages, nonce)
    try:
        marked = render_chat_template(template, marked_messages, **kwargs)
    except TemplateError:
        marked = ""
    segments = _line_up(text, marked, nonce, contents) if marked else None
    if segments is None:
        logger.warning("chat template: message contents not located; special text is parsed")
        return [(text, True)]
    return segments


def _marked(messages: Sequence[ChatMessage], nonce: str) -> tuple[list[ChatMessage], list[str]]:
    """The messages with each piece of text replaced by a sentinel, and the pieces."""
    marked: list[ChatMessage] = []
    contents: list[str] = []
    for message in messages:
        if not message.images:
            marked.append(dataclasses.replace(message, content=_sentinel(nonce, len(contents))))
            contents.append(message.content)
            continue
        text = ""
        offsets: list[int] = []
        for index, piece in enumerate(message.pieces()):
            if index:
                offsets.append(len(text))
            if piece:  # an empty piece stays empty: it is no text part of the message
                text += _sentinel(nonce, len(contents))
                contents.append(piece)
        marked.append(dataclasses.replace(message, content=text, image_offsets=tuple(offsets)))
    return marked, contents


def _sentinel(nonce: str, index: int) -> str:
    return f"\u2063herd{nonce}n{index}\u2063"


def _line_up(text: str, marked: str, nonce: str, contents: Sequence[str]) -> list[Segment] | None:
    pieces = re.split(f"\u2063herd{nonce}n(\\d+)\u2063", marked)
    segments: list[Segment] = []
    pos = 0
    for k, piece in enumerate(pieces):
        if k % 2 == 0:  # the template's own text
            if not text.startswith(piece, pos):
                return None
            segments.append((piece, True))
            pos += len(piece)
            continue
        content = contents[int(piece)]
        after = pieces[k + 1]
        last = k + 1 == len(pieces) - 1
        as_json = json.dumps(content, ensure_ascii=False)[1:-1]  # inside tojson's quotes
        for candidate in dict.fromkeys(
            (content, content.strip(), content.rstrip(), content.lstrip(), as_json)
        ):
            end = pos + len(candidate)
            if text.startswith(candidate, pos) and (
                text[end:] == after if last else text.startswith(after, end)
            ):
                segments.append((candidate, False))
                pos = end
                break
        else:
            return None
    return merge_segments(segments) if pos == len(text) else None
