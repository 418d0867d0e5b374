"""Render a GGUF's own Jinja chat template safely, and check it against Llama 4's format.

Templates come from downloaded files, so they run in a metered Jinja sandbox set up the
way Hugging Face transformers renders chat templates (:mod:`template_sandbox`), bounded to
2 s and 256 MiB. A template's first render, the check at load, runs in a child process
(:mod:`template_probe`), whose verdict decides whether Herd renders it in its own process
later. Any failure becomes a :class:`~app.core.errors.TemplateError`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.chat.llama4_format import (
    BEGIN_OF_TEXT,
    EOT,
    Segment,
    merge_segments,
    render_llama4,
)
from app.core.chat.messages import ChatMessage, Role, to_template_dicts
from app.core.chat.template_budget import TIME_LIMIT_S
from app.core.chat.template_probe import ProbeResult, probe_template
from app.core.chat.template_sandbox import render_template
from app.core.errors import TemplateError

__all__ = [
    "PROBE_MESSAGES",
    "TemplateComparison",
    "check_model_template",
    "compare_with_llama4",
    "render_chat_template",
    "render_chat_template_segments",
]

logger = logging.getLogger(__name__)

_EXCERPT_CHARS = 24

PROBE_MESSAGES: tuple[ChatMessage, ...] = (
    ChatMessage(Role.SYSTEM, "  You are Herd\u2019s careful assistant.\n\n"),
    ChatMessage(Role.USER, " What is in this picture?\n", images=("probe-image.png",)),
    ChatMessage(Role.ASSISTANT, "A red ball on green grass.  \n"),
    ChatMessage(Role.USER, "\tIs the ball big? "),
)
"""The conversation both renderings are compared on: whitespace at the edges of every
message (only the system prompt is trimmed by the official format), a non-ASCII character
(so byte and character offsets differ), an image, two user turns and a generation prompt."""


def _context(
    messages: Sequence[ChatMessage],
    add_generation_prompt: bool,
    bos_token: str,
    eos_token: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = dict(extra or {})
    context.update(
        messages=to_template_dicts(messages),
        add_generation_prompt=add_generation_prompt,
        bos_token=bos_token,
        eos_token=eos_token,
    )
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

    Returns:
        The rendered text, exactly as the template produced it.

    Raises:
        TemplateError: The template does not compile, refuses the conversation
            (``raise_exception``), tries to escape the sandbox, runs past 2 s / 256 MiB,
            or fails in any other way.
    """
    context = _context(messages, add_generation_prompt, bos_token, eos_token, extra)
    return render_template(template, context, deadline=deadline)


def check_model_template(template: str, *, bos_token: str = "", eos_token: str = "") -> ProbeResult:
    """Render :data:`PROBE_MESSAGES` with a model's template in a bounded child process.

    The first thing Herd does with a file's template; cached per template and tokens.

    Args:
        template: A GGUF's ``tokenizer.chat_template``.
        bos_token: What the template gets as ``bos_token``.
        eos_token: What the template gets as ``eos_token``.

    Returns:
        The verdict (:attr:`ProbeResult.usable`: Herd may render it in its own process)
        and the rendering.
    """
    return probe_template(template, _context(PROBE_MESSAGES, True, bos_token, eos_token))


def render_chat_template_segments(
    template: str,
    messages: Sequence[ChatMessage],
    **kwargs: Any,
) -> list[Segment]:
    """Render a model's own template as format text and message contents.

    The template is rendered twice: as is, and with each message's content replaced by a
    unique sentinel. The sentinels mark where contents sit in the real rendering (a
    template may trim them, so the trimmed content is tried too); the rest is the
    template's own text. When the two renderings cannot be lined up (the template
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
    sentinels = [f"\u2063herd{nonce}n{i}\u2063" for i in range(len(messages))]
    try:
        marked = render_chat_template(
            template,
            [dataclasses.replace(m, content=s) for m, s in zip(messages, sentinels, strict=True)],
            **kwargs,
        )
    except TemplateError:
        marked = ""
    segments = _line_up(text, marked, nonce, messages) if marked else None
    if segments is None:
        logger.warning("chat template: message contents not located; special text is parsed")
        return [(text, True)]
    return segments


def _line_up(
    text: str, marked: str, nonce: str, messages: Sequence[ChatMessage]
) -> list[Segment] | None:
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
        content = messages[int(piece)].content
        after = pieces[k + 1]
        last = k + 1 == len(pieces) - 1
        for candidate in dict.fromkeys(
            (content, content.strip(), content.rstrip(), content.lstrip())
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


@dataclass(frozen=True, slots=True)
class TemplateComparison:
    """The result of rendering the probe conversation both ways.

    Attributes:
        matches: The model's template produced exactly the official text.
        first_diff: Byte offset (in UTF-8) of the first difference, or None.
        ours_excerpt: The official text around the difference, whitespace escaped.
        theirs_excerpt: The model's text around the difference, whitespace escaped.
        warning: A sentence for people naming the difference, or None when it matches.
        bos_added: The template did not emit ``<|begin_of_text|>`` (llama.cpp adds it when
            tokenizing), so it was prefixed before comparing.
        notes: Things worth knowing that are not a mismatch (e.g. the BOS prefix).
        ours: The full official rendering of the probe.
        theirs: The full rendering by the model's template (after any BOS prefix).
    """

    matches: bool
    first_diff: int | None
    ours_excerpt: str
    theirs_excerpt: str
    warning: str | None
    bos_added: bool
    notes: tuple[str, ...]
    ours: str
    theirs: str


def compare_with_llama4(
    template: str,
    bos_token: str = BEGIN_OF_TEXT,
    *,
    eos_token: str = EOT,
) -> TemplateComparison:
    """Render :data:`PROBE_MESSAGES` with Herd's Llama 4 renderer and with ``template``.

    Args:
        template: A GGUF's ``tokenizer.chat_template``.
        bos_token: What the template gets as ``bos_token``.
        eos_token: What the template gets as ``eos_token``.

    Returns:
        Where, if anywhere, the two renderings differ.

    Raises:
        TemplateError: The template cannot render the probe conversation, or ran past
            2 s / 256 MiB trying (it is rendered in a child process, see
            :func:`check_model_template`).
    """
    ours = render_llama4(PROBE_MESSAGES, add_generation_prompt=True)
    theirs = check_model_template(template, bos_token=bos_token, eos_token=eos_token).text()
    notes: list[str] = []
    bos_added = not theirs.startswith(BEGIN_OF_TEXT)
    if bos_added:
        theirs = BEGIN_OF_TEXT + theirs
        notes.append(
            f"The model's chat template does not emit {BEGIN_OF_TEXT} itself (llama.cpp adds "
            "it when tokenizing), so it was prefixed before comparing."
        )
    first_diff = _first_difference(ours.encode("utf-8"), theirs.encode("utf-8"))
    if first_diff is None:
        return TemplateComparison(
            matches=True,
            first_diff=None,
            ours_excerpt="",
            theirs_excerpt="",
            warning=None,
            bos_added=bos_added,
            notes=tuple(notes),
            ours=ours,
            theirs=theirs,
        )
    ours_excerpt = _excerpt(ours, first_diff)
    theirs_excerpt = _excerpt(theirs, first_diff)
    warning = (
        f"The model's own chat template differs from Llama 4's official format at byte "
        f"{first_diff}: official '{ours_excerpt}' vs model's '{theirs_excerpt}'. "
        "Herd uses the official format."
    )
    logger.info("%s", warning)
    return TemplateComparison(
        matches=False,
        first_diff=first_diff,
        ours_excerpt=ours_excerpt,
        theirs_excerpt=theirs_excerpt,
        warning=warning,
        bos_added=bos_added,
        notes=tuple(notes),
        ours=ours,
        theirs=theirs,
    )


def _first_difference(a: bytes, b: bytes) -> int | None:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def _excerpt(text: str, byte_offset: int) -> str:
    """A short window of ``text`` around a byte offset, whitespace made visible."""
    # Decoding the prefix with errors="ignore" drops a half character, so the index lands on
    # the character whose bytes start to differ.
    char_index = len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))
    start = max(0, char_index - _EXCERPT_CHARS)
    end = min(len(text), char_index + _EXCERPT_CHARS)
    prefix = "..." if start > 0 else ""
    suffix = "..." if end < len(text) else ""
    return f"{prefix}{_escape(text[start:end])}{suffix}"


def _escape(text: str) -> str:
    out: list[str] = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == "'":
            out.append("\\'")
        elif char in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif not char.isprintable():
            code = ord(char)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)
