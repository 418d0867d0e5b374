"""Compare a GGUF's own chat template with Llama 4's official format, on probe conversations.

Both renderings of each probe must be byte for byte the same. The probes cover what a
template can get wrong: trimming, images (first, and between pieces of text), a missing or
injected system prompt, and a tool round (definitions, a call, its result). Each probe is
rendered in the bounded child process of :func:`template_check.check_model_template`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from app.core.chat.llama4_format import BEGIN_OF_TEXT, EOT, render_llama4
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.template_check import PROBE_MESSAGES, check_model_template
from app.core.chat.template_probe import ProbeResult, ProbeVerdict
from app.core.chat.tools import ToolCall

__all__ = ["PROBES", "Probe", "TemplateComparison", "compare_with_llama4"]

logger = logging.getLogger(__name__)

_EXCERPT_CHARS = 24


@dataclass(frozen=True, slots=True)
class Probe:
    """A conversation the two renderings are compared on.

    Attributes:
        name: How warnings name it ("" for the first, :data:`PROBE_MESSAGES`).
        messages: The conversation, rendered with a generation prompt.
        tools: Tool definitions given with it, or None.
    """

    name: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[Mapping[str, Any], ...] | None = None


PROBE_TOOLS: tuple[Mapping[str, Any], ...] = (
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city, in \u00b0C.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city's name"}},
                "required": ["city"],
            },
        },
    },
)

PROBES: tuple[Probe, ...] = (
    Probe("", PROBE_MESSAGES),
    Probe(
        "without a system prompt",
        (
            # " Compare <image> and <image>, please.\n"
            ChatMessage(
                Role.USER,
                " Compare  and , please.\n",
                images=("probe-a.png", "probe-b.png"),
                image_offsets=(9, 14),
            ),
            ChatMessage(Role.ASSISTANT, "The first is brighter.  \n"),
            ChatMessage(Role.USER, "\tWhich one is older? "),
        ),
    ),
    Probe(
        "with a tool call",
        (
            ChatMessage(Role.SYSTEM, "  You can look up the weather.\n"),
            ChatMessage(Role.USER, " What is the weather in Z\u00fcrich?\n"),
            ChatMessage(
                Role.ASSISTANT,
                "",
                tool_calls=(ToolCall("get_weather", {"city": "Z\u00fcrich"}),),
            ),
            ChatMessage(Role.IPYTHON, '{"temperature": 21, "sky": "clear"}'),
            ChatMessage(Role.ASSISTANT, "It is 21 \u00b0C and clear.  \n"),
            ChatMessage(Role.USER, "\tThanks! "),
        ),
        PROBE_TOOLS,
    ),
)
"""What the template is checked on: :data:`PROBE_MESSAGES`; no system prompt (so a template
that injects a default one is caught) with images between pieces of text; a tool round
after a system prompt (``Environment: ipython``, the tools in the first user message, a
call, its result as a JSON string)."""


@dataclass(frozen=True, slots=True)
class TemplateComparison:
    """The result of rendering the probe conversations both ways.

    Attributes:
        matches: The model's template produced exactly the official text for every probe.
        first_diff: Byte offset (in UTF-8) of the first difference, or None (a match, or a
            probe the template could not render).
        ours_excerpt: The official text around the difference, whitespace escaped.
        theirs_excerpt: The model's text around the difference, whitespace escaped.
        warning: A sentence for people naming the difference, or None when it matches.
        bos_added: The template did not emit ``<|begin_of_text|>`` (llama.cpp adds it when
            tokenizing), so it was prefixed before comparing.
        notes: Things worth knowing that are not a mismatch (e.g. the BOS prefix).
        ours: The full official rendering of the probe that differs (else the first one).
        theirs: The model template's rendering of it (after any BOS prefix).
        probe: The name of the probe that differs ("" for the first, or when all match).
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
    probe: str = ""


def compare_with_llama4(
    template: str,
    bos_token: str = BEGIN_OF_TEXT,
    *,
    eos_token: str = EOT,
) -> TemplateComparison:
    """Render :data:`PROBES` with Herd's Llama 4 renderer and with ``template``.

    Args:
        template: A GGUF's ``tokenizer.chat_template``.
        bos_token: What the template gets as ``bos_token``.
        eos_token: What the template gets as ``eos_token``.

    Returns:
        Where, if anywhere, the two renderings first differ. A template that cannot render
        a later probe (it refuses tool messages, say) differs there, with a warning.

    Raises:
        TemplateError: The template cannot render :data:`PROBE_MESSAGES`, or ran past
            2 s / 256 MiB trying (each probe is rendered in a child process, see
            :func:`~app.core.chat.template_check.check_model_template`).
    """
    # each probe is its own child process: run them side by side (0.49 s one after
    # another for the official template on the 2-core CI machine)
    with ThreadPoolExecutor(max_workers=len(PROBES)) as pool:
        rendered = [pool.submit(_render, template, p, bos_token, eos_token) for p in PROBES]
    first = _compare(rendered[0].result().text(), PROBES[0])
    if not first.matches:
        return _mismatch(first, PROBES[0], first.theirs, first.first_diff)
    for probe, future in zip(PROBES[1:], rendered[1:], strict=True):
        result = future.result()
        if result.verdict is not ProbeVerdict.RENDERED:
            reason = result.user_message.rstrip(".")
            return _mismatch(first, probe, "", None, f"(it fails: {reason})")
        comparison = _compare(result.text(), probe)
        if not comparison.matches:
            return _mismatch(first, probe, comparison.theirs, comparison.first_diff)
    return first


def _render(template: str, probe: Probe, bos_token: str, eos_token: str) -> ProbeResult:
    return check_model_template(
        template,
        bos_token=bos_token,
        eos_token=eos_token,
        messages=probe.messages,
        tools=probe.tools,
    )


def _compare(theirs: str, probe: Probe) -> TemplateComparison:
    ours = render_llama4(probe.messages, tools=probe.tools)
    notes: list[str] = []
    bos_added = not theirs.startswith(BEGIN_OF_TEXT)
    if bos_added:
        theirs = BEGIN_OF_TEXT + theirs
        notes.append(
            f"The model's chat template does not emit {BEGIN_OF_TEXT} itself (llama.cpp adds "
            "it when tokenizing), so it was prefixed before comparing."
        )
    first_diff = _first_difference(ours.encode("utf-8"), theirs.encode("utf-8"))
    return TemplateComparison(
        matches=first_diff is None,
        first_diff=first_diff,
        ours_excerpt="",
        theirs_excerpt="",
        warning=None,
        bos_added=bos_added,
        notes=tuple(notes),
        ours=ours,
        theirs=theirs,
    )


def _mismatch(
    first: TemplateComparison,
    probe: Probe,
    theirs: str,
    first_diff: int | None,
    failure: str = "",
) -> TemplateComparison:
    """The comparison for a probe that differs (``failure``: why it did not render)."""
    ours = render_llama4(probe.messages, tools=probe.tools)
    ours_excerpt = theirs_excerpt = ""
    if first_diff is None:
        warning = (
            f"The model's own chat template cannot render a conversation {probe.name} "
            f"{failure}. Herd uses the official format."
        )
    else:
        ours_excerpt = _excerpt(ours, first_diff)
        theirs_excerpt = _excerpt(theirs, first_diff)
        where = f" of a conversation {probe.name}" if probe.name else ""
        warning = (
            f"The model's own chat template differs from Llama 4's official format at byte "
            f"{first_diff}{where}: official '{ours_excerpt}' vs model's '{theirs_excerpt}'. "
            "Herd uses the official format."
        )
    logger.info("%s", warning)
    return TemplateComparison(
        matches=False,
        first_diff=first_diff,
        ours_excerpt=ours_excerpt,
        theirs_excerpt=theirs_excerpt,
        warning=warning,
        bos_added=first.bos_added,
        notes=first.notes,
        ours=ours,
        theirs=theirs,
        probe=probe.name,
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
