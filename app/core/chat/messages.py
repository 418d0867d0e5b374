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

from app.core.errors import TemplateError

__all__ = ["ChatMessage", "Role", "to_template_dicts"]


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
            image placeholder placed before the text.
        expects_tool_result: Only for assistant messages that called a tool and now wait
            for its result; Llama 4 ends such a message with ``<|eom|>`` instead of ``<|eot|>``.
    """

    role: Role
    content: str
    images: tuple[str, ...] = ()
    expects_tool_result: bool = False

    def __post_init__(self) -> None:
        # Coerce the friendly spellings (a role name, a list of images) once, here, so every
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
        if self.expects_tool_result and self.role is not Role.ASSISTANT:
            raise TemplateError(
                f"Only an assistant message can wait for a tool result, not a "
                f"{self.role.value} message.",
            )

    def to_dict(self) -> dict[str, Any]:
        """This message as a JSON-safe dict (for the engine pipe and the chat store)."""
        data: dict[str, Any] = {
            "role": self.role.value,
            "content": self.content,
            "images": list(self.images),
        }
        if self.expects_tool_result:
            data["expects_tool_result"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatMessage:
        """Rebuild a message from :meth:`to_dict`'s output.

        Raises:
            TemplateError: The dict is not a message (missing keys, wrong types, bad role).
        """
        if not isinstance(data, Mapping) or "role" not in data or "content" not in data:
            raise TemplateError(
                "A chat message needs a role and content.",
                "The conversation data is damaged; start a new chat or report a bug.",
            )
        images = data.get("images", ())
        if isinstance(images, str) or not isinstance(images, Sequence):
            raise TemplateError("A chat message's images must be a list of references.")
        return cls(
            role=Role.parse(data["role"]),
            content=data["content"],
            images=tuple(images),
            expects_tool_result=bool(data.get("expects_tool_result", False)),
        )


def to_template_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Messages as the dicts a Hugging Face-style Jinja chat template reads.

    ``content`` is the plain string when a message has no images. Otherwise it is a list of
    parts: one ``{"type": "image"}`` per image, then ``{"type": "text", "text": ...}``
    (left out when the text is empty), the order Meta's examples and the official
    Llama 4 processor use. Tool results use the role name ``tool``, which the official
    Llama 4 template and most others understand.

    Args:
        messages: The conversation.

    Returns:
        A new list of new dicts; the caller may change them.
    """
    result: list[dict[str, Any]] = []
    for message in messages:
        content: str | list[dict[str, str]]
        if message.images:
            content = [{"type": "image"} for _ in message.images]
            if message.content:
                content.append({"type": "text", "text": message.content})
        else:
            content = message.content
        result.append({"role": message.role.template_name, "content": content})
    return result
