r"""Llama 4's chat format, written out by hand, and the prompt formats the engine can use.

The format follows Meta's reference implementation (llama-models ``models/llama4/
chat_format.py``) and the official Hugging Face chat template of the Llama 4 Instruct
models::

    <|begin_of_text|>
    <|header_start|>system<|header_end|>\n\n{system, trimmed}<|eot|>
    <|header_start|>user<|header_end|>\n\n<|image|>...{text, verbatim}<|eot|>
    <|header_start|>assistant<|header_end|>\n\n{text, verbatim}<|eot|> (or <|eom|>)
    <|header_start|>ipython<|header_end|>\n\n{tool result, verbatim}<|eot|>
    <|header_start|>assistant<|header_end|>\n\n                 (generation prompt)

(no newlines between the pieces). llama.cpp's built-in ``llama4`` template trims every
message, which is not what the model was trained on, so Herd renders the prompt itself.

A prompt is rendered as :data:`Segment` s: the format's own text, whose special tokens
(``<|eot|>``, ``<|image|>`` ...) are control tokens, and the messages' contents, which the
engine always tokenizes as plain text. So text a person types or pastes that looks like a
control token stays text: it cannot end a turn, start a fake assistant turn, or claim an
image slot.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.core.chat.messages import ChatMessage, Role
from app.core.errors import TemplateError

__all__ = [
    "BEGIN_OF_TEXT",
    "END_OF_TEXT",
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


def _validate(messages: Sequence[ChatMessage]) -> None:
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


def render_llama4(
    messages: Sequence[ChatMessage],
    *,
    add_generation_prompt: bool = True,
    include_bos: bool = True,
) -> str:
    """Render a conversation in Llama 4's official chat format, byte for byte.

    The text of :func:`render_llama4_segments`, joined (see there).

    Raises:
        TemplateError: The conversation breaks the format's rules.
    """
    return join_segments(
        render_llama4_segments(
            messages, add_generation_prompt=add_generation_prompt, include_bos=include_bos
        )
    )


def render_llama4_segments(
    messages: Sequence[ChatMessage],
    *,
    add_generation_prompt: bool = True,
    include_bos: bool = True,
) -> list[Segment]:
    """Render a conversation in Llama 4's official chat format, as format and content parts.

    The system message is trimmed (as the official template does); every other message
    is kept verbatim. Each image becomes one :data:`IMAGE` placeholder (format text) before
    the text.

    Args:
        messages: The conversation; an optional system message first.
        add_generation_prompt: End with the assistant header so the model answers.
        include_bos: Start with ``<|begin_of_text|>``. Tokenize the result with BOS
            adding off, or pass False and let the tokenizer add BOS.

    Returns:
        The prompt as merged :data:`Segment` s.

    Raises:
        TemplateError: The conversation breaks the format's rules (empty, a system message
            that is not first, images on a system or tool message).
    """
    _validate(messages)
    parts: list[Segment] = [(BEGIN_OF_TEXT, True)] if include_bos else []
    for message in messages:
        parts.append((_header(message.role), True))
        parts.extend((IMAGE, True) for _ in message.images)
        # Meta's reference and the official template both trim only the system prompt.
        content = message.content.strip() if message.role is Role.SYSTEM else message.content
        parts.append((content, False))
        parts.append((EOM if message.expects_tool_result else EOT, True))
    if add_generation_prompt:
        parts.append((_header(Role.ASSISTANT), True))
    return merge_segments(parts)
