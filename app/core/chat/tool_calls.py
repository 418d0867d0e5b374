"""Tool calls read back from a Llama 4 reply, in the forms Meta documents.

Llama 4 answers a request to call tools with the whole reply as the call(s), in one of:

* JSON, as the official chat template asks (``{"name": ..., "parameters": {...}}``; one
  object, several in a row, or a list; ``"type": "function"`` and ``"arguments"`` are
  accepted too), optionally after ``<|python_start|>...<|python_end|>`` as the template
  writes an assistant's tool-call turn;
* Python calls in a list, as Meta's prompt guide shows (``[get_weather(city="Paris")]``);
* ``<function=name>{...}</function>``, the custom format in Meta's guide.

Only a reply that is nothing but calls is read as calls (Meta's own decoder does the same):
text around a call ("Let me check: [...]") stays text, and so does JSON or a list that
names a function the request did not offer.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from app.core.chat.llama4_format import PYTHON_END, PYTHON_START
from app.core.chat.tools import ToolCall
from app.core.errors import TemplateError

__all__ = ["ParsedReply", "parse_tool_calls"]

_FUNCTION_TAG = re.compile(r"<function=(?P<name>[^>]+)>(?P<args>\{.*?\})</function>", re.S)


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """A reply split into its text and its tool calls (none: all of it is text)."""

    content: str
    calls: tuple[ToolCall, ...] = ()


def parse_tool_calls(text: str, names: Collection[str] = ()) -> ParsedReply:
    """Read ``text``, a whole reply, as tool calls when it is nothing else.

    Args:
        text: The reply as the model wrote it (its end-of-turn token left off).
        names: The functions the request offered; when given, a call to any other one
            leaves the reply as text.

    Returns:
        The calls, and the text that is not a call: the ``<|python_start|>`` part, if any
        (usually empty). Without calls, ``content`` is ``text`` unchanged.
    """
    body, content = text.strip(), ""
    if body.startswith(PYTHON_START):
        head, sep, tail = body[len(PYTHON_START) :].partition(PYTHON_END)
        if sep:
            content, body = head.strip(), tail.strip()
        else:
            body = head.strip()
    elif body.endswith(PYTHON_END):
        body = body[: -len(PYTHON_END)].strip()
    calls = _calls(body)
    if not calls or (names and any(c.name not in names for c in calls)):
        return ParsedReply(text)
    return ParsedReply(content, calls)


def _calls(body: str) -> tuple[ToolCall, ...]:
    if not body:
        return ()
    for reader in (_json_calls, _python_calls, _tag_calls):
        try:
            calls = reader(body)
        except (ValueError, SyntaxError, TypeError, TemplateError, RecursionError):
            continue
        if calls:
            return calls
    return ()


def _json_values(body: str) -> Iterator[Any]:
    """Each JSON value in ``body``: one after another, apart by blanks or semicolons."""
    decoder = json.JSONDecoder()
    at = 0
    while at < len(body):
        value, at = decoder.raw_decode(body, at)
        yield value
        while at < len(body) and (body[at].isspace() or body[at] == ";"):
            at += 1


def _json_calls(body: str) -> tuple[ToolCall, ...]:
    if body[0] not in "{[":
        return ()
    items: list[Any] = []
    for value in _json_values(body):
        items.extend(value if isinstance(value, list) else [value])
    calls = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return ()
        if item.get("type", "function") != "function":
            return ()
        extra = set(item) - {"type", "name", "parameters", "arguments"}
        if extra:
            return ()
        args = item.get("parameters", item.get("arguments", {}))
        calls.append(ToolCall(item["name"], {} if args is None else args))
    return tuple(calls)


def _python_calls(body: str) -> tuple[ToolCall, ...]:
    if not body.startswith("["):
        return ()
    tree = ast.parse(body, mode="eval")
    if not isinstance(tree.body, ast.List) or not tree.body.elts:
        return ()
    calls = []
    for node in tree.body.elts:
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.args:
            return ()
        args = {}
        for keyword in node.keywords:
            if keyword.arg is None:  # **kwargs
                return ()
            args[keyword.arg] = ast.literal_eval(keyword.value)
        calls.append(ToolCall(node.func.id, args))
    return tuple(calls)


def _tag_calls(body: str) -> tuple[ToolCall, ...]:
    calls = []
    at = 0
    for match in _FUNCTION_TAG.finditer(body):
        if body[at : match.start()].strip():
            return ()
        calls.append(ToolCall(match["name"].strip(), json.loads(match["args"])))
        at = match.end()
    if body[at:].strip():
        return ()
    return tuple(calls)
