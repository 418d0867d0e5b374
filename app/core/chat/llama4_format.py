r"""Llama 4's chat format, written out by hand, and the prompt formats the engine can use.

The format is the official Hugging Face chat template of the Llama 4 Instruct models (the
``chat_template`` of transformers' ``processing_llama4.py``, which Llama 4 GGUFs embed)::

    <|begin_of_text|>
    <|header_start|>system<|header_end|>\n\n{system, trimmed}<|eot|>
    <|header_start|>user<|header_end|>\n\n<|image|>...{text, verbatim}<|eot|>
    <|header_start|>assistant<|header_end|>\n\n{text, verbatim}<|eot|> (or <|eom|>)
    <|header_start|>ipython<|header_end|>\n\n{tool result as a JSON string}<|eot|>
    <|header_start|>assistant<|header_end|>\n\n                 (generation prompt)

(no newlines between the pieces). To continue the last reply (``continue_final_message``,
as in transformers' ``apply_chat_template``), it is left open instead: no ``<|eot|>`` after
it and no generation prompt, so the model goes on with the same turn. With tool
definitions, the system turn starts with ``Environment: ipython\n`` and the first user turn
is a fixed instruction, each tool's JSON and the user's text, trimmed; an assistant turn
with tool calls is
``<|python_start|>{text}<|python_end|>{"name": ..., "parameters": {...}}...<|eot|>``.
Meta's reference implementation (llama-models ``models/llama4/chat_format.py``) differs in
small ways: it trims no message (not even the system prompt), writes tool results raw and
tool calls without ``<|python_start|>``, and ends an assistant message with ``<|eom|>`` when
the model stopped there. Herd follows the template, which is what the models' files carry,
and keeps only that last point (see :attr:`ChatMessage.expects_tool_result`). llama.cpp's
built-in ``llama4`` template trims every message, which neither does, so Herd renders the
prompt itself.

A prompt is rendered as :data:`Segment` s: the format's own text, whose special tokens
(``<|eot|>``, ``<|image|>`` ...) are control tokens, and the messages' contents (tool
definitions, call arguments and results included), which the engine always tokenizes as
plain text. So text a person types or pastes that looks like a control token stays text: it
cannot end a turn, start a fake assistant turn, or claim an image slot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.core.chat.messages import ChatMessage, Role
from app.core.chat.tools import check_tools, to_json
from app.core.errors import TemplateError

__all__ = [
    "BEGIN_OF_TEXT",
    "END_OF_TEXT",
    "ENVIRONMENT_LINE",
    "EOM",
    "EOT",
    "HEADER_END",
    "HEADER_START",
    "IMAGE",
    "IMAGE_END",
    "IMAGE_START",
    "PATCH",
    "PYTHON_END",
    "PYTHON_START",
    "STOP_TOKENS",
    "TILE_X_SEPARATOR",
    "TOOLS_PREAMBLE",
    "TILE_Y_SEPARATOR",
    "Segment",
    "join_segments",
    "render_llama4",
    "merge_segments",
    "render_llama4_segments",
]

BEGIN_OF_TEXT = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
HEADER_START = "<|header_start|>"
HEADER_END = "<|header_end|>"
EOT = "<|eot|>"
"""End of turn: the model has finished answering."""
EOM = "<|eom|>"
"""End of message: the model called a tool and waits for its result."""
IMAGE = "<|image|>"
"""One image's placeholder; the vision projector expands it into the image's tokens."""
IMAGE_START = "<|image_start|>"
IMAGE_END = "<|image_end|>"
PATCH = "<|patch|>"
TILE_X_SEPARATOR = "<|tile_x_separator|>"
TILE_Y_SEPARATOR = "<|tile_y_separator|>"
PYTHON_START = "<|python_start|>"
PYTHON_END = "<|python_end|>"

ENVIRONMENT_LINE = "Environment: ipython\n"
"""Starts the system prompt when tools are given."""
TOOLS_PREAMBLE = (
    "Given the following functions, please respond with a JSON for a function call "
    "with its proper arguments that best answers the given prompt.\n\n"
    'Respond in the format {"name": function name, "parameters": dictionary of argument name '
    "and its value}.Do not use variables.\n\n"
)
"""The official template's instruction before the tool definitions (sic: no space before
"Do")."""

STOP_TOKENS: tuple[str, ...] = (EOT, EOM)
"""Generation stops at either: end of turn, or a tool call waiting for its result."""

LLAMA4_FORMAT_NAME = "Llama 4 (official)"

Segment = tuple[str, bool]
"""``(text, is_format)``: True for the format's own text (special tokens in it are control
tokens), False for a message's content (always plain text, whatever it looks like)."""


def join_segments(segments: Sequence[Segment]) -> str:
    """The prompt text the segments make up."""
    return "".join(text for text, _ in segments)


def merge_segments(segments: Sequence[Segment]) -> list[Segment]:
    """Drop empty segments and join neighbours of the same kind."""
    merged: list[Segment] = []
    for text, is_format in segments:
        if not text:
            continue
        if merged and merged[-1][1] == is_format:
            merged[-1] = (merged[-1][0] + text, is_format)
        else:
            merged.append((text, is_format))
    return merged


def _header(role: Role) -> str:
    return f"{HEADER_START}{role.value}{HEADER_END}\n\n"


def _validate(messages: Sequence[ChatMessage], tools: Sequence[Mapping[str, Any]] | None) -> None:
    if not messages:
        raise TemplateError("There is nothing to send: the conversation is empty.")
    for index, message in enumerate(messages):
        if not isinstance(message, ChatMessage):
            raise TemplateError(
                f"Message {index + 1} is a {type(message).__name__}, not a chat message."
            )
        if message.role is Role.SYSTEM and index != 0:
            raise TemplateError(
                f"Message {index + 1} is a system message; Llama 4 allows one system "
                "message and only as the first message.",
                "Put the instructions into the first message or edit the system prompt.",
            )
        if message.images and message.role in (Role.SYSTEM, Role.IPYTHON):
            raise TemplateError(
                f"A {message.role.value} message cannot carry images in Llama 4's format.",
                "Attach images to a user message.",
            )
    if tools is None:
        return
    # The official template puts the tools into the first message after the system prompt,
    # whatever it is, and trims it as text: only a plain user message comes out right.
    first_index = 1 if messages[0].role is Role.SYSTEM else 0
    first = messages[first_index] if first_index < len(messages) else None
    if first is None or first.role is not Role.USER:
        raise TemplateError(
            "Llama 4's official format puts the tool definitions into the first user message, "
            "and this conversation does not start with one.",
            "Start the conversation (after the system prompt) with the user's message.",
        )
    if first.images:
        raise TemplateError(
            "Llama 4's official format cannot put tool definitions into a first user message "
            "that carries images (the official template turns it into garbled text).",
            "Send the images in a later message, or leave the tools out.",
        )


def render_llama4(
    messages: Sequence[ChatMessage],
    *,
    add_generation_prompt: bool = True,
    include_bos: bool = True,
    tools: Sequence[Mapping[str, Any]] | None = None,
    continue_final_message: bool = False,
) -> str:
    """Render a conversation in Llama 4's official chat format, byte for byte.

    The text of :func:`render_llama4_segments`, joined (see there).

    Raises:
        TemplateError: The conversation breaks the format's rules.
    """
    return join_segments(
        render_llama4_segments(
            messages,
            add_generation_prompt=add_generation_prompt,
            include_bos=include_bos,
            tools=tools,
            continue_final_message=continue_final_message,
        )
    )


def render_llama4_segments(
    messages: Sequence[ChatMessage],
    *,
    add_generation_prompt: bool = True,
    include_bos: bool = True,
    tools: Sequence[Mapping[str, Any]] | None = None,
    continue_final_message: bool = False,
) -> list[Segment]:
    """Render a conversation in Llama 4's official chat format, as format and content parts.

    As the official template does: the system prompt is trimmed, every other message kept
    verbatim (but the first user message is trimmed when tools are given, as it is written
    after them); each image is one :data:`IMAGE` placeholder (format text) at its place in
    the text (:attr:`ChatMessage.image_offsets`); a tool result is written as a JSON string.
    An assistant message that waits for a tool result (``expects_tool_result``) ends with
    ``<|eom|>``, as the model wrote it (the official template knows only ``<|eot|>``).

    Args:
        messages: The conversation; an optional system message first.
        add_generation_prompt: End with the assistant header so the model answers.
        include_bos: Start with ``<|begin_of_text|>``. Tokenize the result with BOS
            adding off, or pass False and let the tokenizer add BOS.
        tools: Tool definitions (JSON schemas, as for Hugging Face's
            ``apply_chat_template``); None for none. Given (even empty), they go into the
            first user message after a fixed instruction, and a system prompt starts with
            ``Environment: ipython``.
        continue_final_message: Leave the last message, an assistant reply, open (no
            end-of-turn after it) so the model continues it; no generation prompt then.

    Returns:
        The prompt as merged :data:`Segment` s.

    Raises:
        TemplateError: The conversation breaks the format's rules (empty, a system message
            that is not first, images on a system or tool message; with tools: no first
            user message, or images in it; tools that are not JSON objects; a last
            message to continue that is not a reply in words).
    """
    _validate(messages, tools)
    if continue_final_message:
        _check_continuable(messages[-1])
    tool_texts = None if tools is None else check_tools(tools)
    parts: list[Segment] = [(BEGIN_OF_TEXT, True)] if include_bos else []
    rest = list(messages)
    if rest[0].role is Role.SYSTEM:
        system = rest.pop(0)
        parts.append((_header(Role.SYSTEM), True))
        if tool_texts is not None:
            parts.append((ENVIRONMENT_LINE, True))
        # The official template trims the system prompt (Meta's reference does not).
        parts += [(system.content.strip(), False), (EOT, True)]
    if tool_texts is not None:
        parts.append((_header(Role.USER) + TOOLS_PREAMBLE, True))
        for text in tool_texts:
            parts += [(text, False), ("\n\n", True)]
        parts += [(rest.pop(0).content.strip(), False), (EOT, True)]
    for message in rest:
        parts += _message_segments(message)
    if continue_final_message:
        parts.pop()  # the last reply's <|eot|>: the model goes on where it stopped
    elif add_generation_prompt:
        parts.append((_header(Role.ASSISTANT), True))
    return merge_segments(parts)


def _check_continuable(last: ChatMessage) -> None:
    if last.role is not Role.ASSISTANT:
        raise TemplateError(
            "Only a reply can be continued, and the conversation does not end with one."
        )
    if last.expects_tool_result or last.tool_calls:
        raise TemplateError(
            "A reply that called a tool cannot be continued: it waits for the tool's result.",
            "Regenerate it instead.",
        )


def _message_segments(message: ChatMessage) -> list[Segment]:
    if message.role is Role.IPYTHON:
        # The official template writes a tool result with tojson: a string is quoted.
        return [(_header(Role.IPYTHON), True), (to_json(message.content), False), (EOT, True)]
    parts: list[Segment] = [(_header(message.role), True)]
    if message.tool_calls:
        parts.append((PYTHON_START, True))
    for index, piece in enumerate(message.pieces()):
        if index:
            parts.append((IMAGE, True))
        parts.append((piece, False))
    if message.tool_calls:
        parts.append((PYTHON_END, True))
        parts.append(("".join(call.text() for call in message.tool_calls), False))
    parts.append((EOM if message.expects_tool_result else EOT, True))
    return parts
