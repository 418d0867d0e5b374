"""Tool calling: the calls an assistant message makes, tool definitions, and their JSON.

The JSON is written the way Llama 4's official chat template writes it (Hugging Face's
``tojson`` filter: ``json.dumps`` with ``ensure_ascii=False`` and no HTML escaping), so
:mod:`llama4_format` can render tool rounds byte for byte. What the official template would
turn into broken text (a name that needs JSON escaping, ``NaN``, arguments that are not an
object) is refused here with a :class:`~app.core.errors.TemplateError` instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import TemplateError

__all__ = ["ToolCall", "check_tools", "to_json"]


def to_json(value: object, *, indent: int | None = None) -> str:
    """``value`` as the official template's ``tojson`` writes it.

    Raises:
        TemplateError: ``value`` is not JSON data (an object, ``NaN`` or infinity).
    """
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TemplateError(
            f"A tool definition or tool call is not plain JSON data ({exc}).",
            "Use only text, numbers, true/false, null, lists and objects with text keys.",
        ) from None


def _json_object(value: object, what: str) -> dict[str, Any]:
    """``value`` (a mapping, or the JSON text of an object) as a fresh plain dict."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TemplateError(f"{what} is not valid JSON.") from None
    if not isinstance(value, Mapping):
        raise TemplateError(
            f"{what} must be a JSON object, not {type(value).__name__}.",
            'Pass the arguments as an object, e.g. {"city": "Paris"}.',
        )
    # A JSON round trip: a private copy of plain data that renders exactly as the original.
    copy: dict[str, Any] = json.loads(to_json(dict(value)))
    return copy


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call in an assistant message.

    Attributes:
        name: The function's name, as the tool definition spells it.
        arguments: Argument names and values: a JSON object, kept in its order (a copy;
            a JSON text of an object is parsed).
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name:
            raise TemplateError("A tool call needs a function name.")
        # The official template writes the name between quotes without escaping it.
        if to_json(name) != f'"{name}"':
            raise TemplateError(
                f"The tool name {name!r} holds a quote, backslash or control character.",
                "Name tools with letters, digits and underscores.",
            )
        object.__setattr__(
            self, "arguments", _json_object(self.arguments, "A tool call's arguments")
        )

    def to_dict(self) -> dict[str, Any]:
        """This call as a JSON-safe dict: ``{"name": ..., "arguments": {...}}``."""
        return {"name": self.name, "arguments": dict(self.arguments)}

    def to_template_dict(self) -> dict[str, Any]:
        """This call as Hugging Face templates read it (OpenAI's shape; arguments an object)."""
        return {"type": "function", "function": self.to_dict()}

    @classmethod
    def from_dict(cls, data: object) -> ToolCall:
        """A call from :meth:`to_dict` or :meth:`to_template_dict` output (or OpenAI's shape).

        Raises:
            TemplateError: ``data`` is not a tool call.
        """
        if isinstance(data, ToolCall):
            return data
        if isinstance(data, Mapping) and isinstance(data.get("function"), Mapping):
            data = data["function"]
        if not isinstance(data, Mapping) or "name" not in data:
            raise TemplateError("A tool call needs a name and arguments.")
        return cls(data["name"], data.get("arguments", {}))

    def text(self) -> str:
        """The call as the official template writes it after ``<|python_end|>``."""
        return f'{{"name": "{self.name}", "parameters": {to_json(self.arguments)}}}'


def check_tools(tools: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Each tool definition's JSON, as the official template writes it (indented by 4).

    Raises:
        TemplateError: ``tools`` is not a list of JSON objects.
    """
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
        raise TemplateError(
            "Tool definitions must be a list of JSON objects.",
            "Pass a list, even for one tool; pass None for no tools.",
        )
    texts: list[str] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise TemplateError(
                f"Tool definition {index + 1} is a {type(tool).__name__}, not a JSON object."
            )
        texts.append(to_json(tool, indent=4))
    return tuple(texts)
