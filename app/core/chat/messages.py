"""Chat messages: the value objects every prompt format renders.

A :class:`ChatMessage` is plain data, so it crosses the engine's process pipe as a dict
(:meth:`ChatMessage.to_dict` / :meth:`ChatMessage.from_dict`) and reaches a model's own Jinja
chat template as a Hugging Face-style dict (:func:`to_template_dicts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.core.chat.tools import ToolCall
from app.core.errors import TemplateError

__all__ = ["ChatMessage", "Role", "ToolCall", "to_template_dicts"]

_IMAGE_REF_KEYS = ("image", "path", "url")  # where a Hugging Face image part names its image


class Role(StrEnum):
    """Who wrote a message.

    Llama 4 calls the tool-result role ``ipython``; ``Role("tool")`` is accepted as an alias
    because OpenAI-style clients and most chat templates use that name.
    """

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    IPYTHON = "ipython"

    @classmethod
    def _missing_(cls, value: object) -> Role | None:
        if not isinstance(value, str):
            return None
        name = value.strip().lower()
        if name == "tool":
            return cls.IPYTHON
        return next((role for role in cls if role.value == name), None)

    @classmethod
    def parse(cls, value: object) -> Role:
        """Turn a role name (or a Role) into a Role.

        Raises:
            TemplateError: The name is not a role Herd knows.
        """
        if isinstance(value, Role):
            return value
        if isinstance(value, str):  # anything else is no role name (_missing_ says so too)
            try:
                return cls(value)
            except ValueError:
                pass
        raise TemplateError(
            f"Unknown message role {value!r}.",
            "Use one of: system, user, assistant, ipython (tool).",
        )

    @property
    def template_name(self) -> str:
        """The name a Hugging Face-style chat template expects (``tool`` for tool results)."""
        return "tool" if self is Role.IPYTHON else self.value


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation.

    Attributes:
        role: Who wrote it.
        content: The text, exactly as written (renderers decide what, if anything, to trim).
        images: Image references (paths or ``sha256:`` refs), in order; each one becomes one
            image placeholder.
        expects_tool_result: Only for assistant messages that called a tool and now wait
            for its result; Llama 4 ends such a message with ``<|eom|>`` instead of ``<|eot|>``.
        tool_calls: Only for assistant messages: the function calls it made, as structured
            data (Hugging Face's ``tool_calls``); ``content`` is then any text around them.
        image_offsets: Where each image sits in ``content``: character offsets (Python
            string indices), one per image, non-decreasing, each within ``0..len(content)``.
            Empty (the default): every image before the text. All zeros are stored as empty.
    """

    role: Role
    content: str
    images: tuple[str, ...] = ()
    expects_tool_result: bool = False
    tool_calls: tuple[ToolCall, ...] = ()
    image_offsets: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # Coerce the friendly spellings (a role name, lists, call dicts) once, here, so every
        # renderer can rely on the declared types.
        object.__setattr__(self, "role", Role.parse(self.role))
        if not isinstance(self.content, str):
            raise TemplateError(
                f"A {self.role.value} message has content of type "
                f"{type(self.content).__name__}, not text.",
                "Pass the message text as a string.",
            )
        images = tuple(self.images)
        if not all(isinstance(ref, str) and ref for ref in images):
            raise TemplateError(
                "An image reference must be a non-empty path or sha256 reference.",
                "Attach the image again.",
            )
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "image_offsets", self._checked_offsets())
        calls = tuple(ToolCall.from_dict(call) for call in self.tool_calls)
        object.__setattr__(self, "tool_calls", calls)
        if (self.expects_tool_result or calls) and self.role is not Role.ASSISTANT:
            raise TemplateError(
                f"Only an assistant message can call a tool or wait for a tool result, not a "
                f"{self.role.value} message.",
            )
        if self.expects_tool_result and calls:
            raise TemplateError(
                "A message with structured tool calls ends with <|eot|> in Llama 4's official "
                "format; it cannot also end with <|eom|> (expects_tool_result).",
                "Keep either the tool calls or the reply's raw text ending with <|eom|>.",
            )

    def _checked_offsets(self) -> tuple[int, ...]:
        offsets = tuple(self.image_offsets)
        if not offsets:
            return ()
        if len(offsets) != len(self.images):
            raise TemplateError(
                f"A message has {len(self.images)} image(s) but {len(offsets)} image position(s).",
                "Give one position per image, or none to put every image first.",
            )
        previous = 0
        for offset in offsets:
            if type(offset) is not int or not previous <= offset <= len(self.content):
                raise TemplateError(
                    f"Image position {offset!r} is not a place in the message's text: positions "
                    f"are character offsets from 0 to {len(self.content)}, in order.",
                    "Attach the images again.",
                )
            previous = offset
        return () if previous == 0 else offsets

    def pieces(self) -> list[str]:
        """The text split at the images: one more piece than there are images.

        Example: ``"a b"`` with one image at offset 1 gives ``["a", " b"]``; the images go
        between the pieces.
        """
        offsets = self.image_offsets or (0,) * len(self.images)
        bounds = (0, *offsets, len(self.content))
        return [self.content[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]

    def to_dict(self) -> dict[str, Any]:
        """This message as a JSON-safe dict (for the engine pipe and the chat store)."""
        data: dict[str, Any] = {
            "role": self.role.value,
            "content": self.content,
            "images": list(self.images),
        }
        if self.image_offsets:
            data["image_offsets"] = list(self.image_offsets)
        if self.expects_tool_result:
            data["expects_tool_result"] = True
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatMessage:
        """Rebuild a message from :meth:`to_dict`'s output, or from a Hugging Face-style dict.

        ``content`` may be a list of parts (``{"type": "text", "text": ...}`` and
        ``{"type": "image"}``, as :func:`to_template_dicts` writes them): the text parts are
        joined and each image keeps its place. An image part names its image under
        ``image``, ``path`` or ``url``, or the images come from the dict's ``images``, in
        order. ``tool_calls`` may be in Herd's or in Hugging Face's (OpenAI's) shape.

        Raises:
            TemplateError: The dict is not a message (missing keys, wrong types, bad role),
                or it is a system message of several parts (Llama 4's official template
                keeps only the first one).
        """
        if not isinstance(data, Mapping) or "role" not in data or "content" not in data:
            raise TemplateError(
                "A chat message needs a role and content.",
                "The conversation data is damaged; start a new chat or report a bug.",
            )
        role = Role.parse(data["role"])
        images = _sequence(data.get("images", ()), "images")
        offsets = _sequence(data.get("image_offsets", ()), "image_offsets")
        content = data["content"]
        if content is None and data.get("tool_calls"):
            content = ""  # OpenAI's shape of a message that only calls tools
        if isinstance(content, list):
            content, images, offsets = _from_parts(role, content, images)
        return cls(
            role=role,
            content=content,
            images=tuple(images),
            expects_tool_result=bool(data.get("expects_tool_result", False)),
            tool_calls=tuple(_sequence(data.get("tool_calls") or (), "tool_calls")),
            image_offsets=tuple(offsets),
        )


def _sequence(value: object, name: str) -> Sequence[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TemplateError(f"A chat message's {name} must be a list.")
    return value


def _from_parts(
    role: Role, parts: list[Any], images: Sequence[Any]
) -> tuple[str, list[Any], list[int]]:
    """Text, image refs and image offsets from a Hugging Face content list."""
    if role is Role.SYSTEM and len(parts) > 1:
        raise TemplateError(
            "The system message has several parts; Llama 4's official template keeps only "
            "the first one and would drop the rest.",
            "Join the system prompt into one text.",
        )
    text = ""
    refs: list[Any] = []
    offsets: list[int] = []
    given = iter(images)
    for part in parts:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            text += part["text"]
        elif kind == "image":
            ref = next((part[k] for k in _IMAGE_REF_KEYS if isinstance(part.get(k), str)), None)
            ref = ref if ref is not None else next(given, None)
            if ref is None:
                raise TemplateError("An image part of a chat message names no image.")
            refs.append(ref)
            offsets.append(len(text))
        else:
            raise TemplateError(
                f"Unknown content part {part!r:.60}: Herd reads text and image parts.",
            )
    if next(given, None) is not None:
        raise TemplateError("A chat message names more images than its content has places for.")
    return text, refs, offsets


def to_template_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Messages as the dicts a Hugging Face-style Jinja chat template reads.

    ``content`` is the plain string when a message has no images. Otherwise it is a list of
    parts in reading order: ``{"type": "text", "text": ...}`` for each piece of text (empty
    pieces left out) and ``{"type": "image"}`` where each image sits (by default all images
    first, the order of Meta's examples). Tool results use the role name ``tool``, which the
    official Llama 4 template and most others understand; an assistant message's tool calls
    are ``tool_calls`` in Hugging Face's shape (arguments as an object).

    Args:
        messages: The conversation.

    Returns:
        A new list of new dicts; the caller may change them.
    """
    result: list[dict[str, Any]] = []
    for message in messages:
        content: str | list[dict[str, str]]
        if message.images:
            content = []
            for index, piece in enumerate(message.pieces()):
                if index:
                    content.append({"type": "image"})
                if piece:
                    content.append({"type": "text", "text": piece})
        else:
            content = message.content
        entry: dict[str, Any] = {"role": message.role.template_name, "content": content}
        if message.tool_calls:
            entry["tool_calls"] = [call.to_template_dict() for call in message.tool_calls]
        result.append(entry)
    return result
