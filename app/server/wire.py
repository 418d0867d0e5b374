"""OpenAI's chat-completions JSON, read into core objects and written back from events."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core import events as ev
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.tool_calls import ParsedReply
from app.core.chat.tools import ToolCall, to_json
from app.core.errors import HerdError
from app.core.settings import SamplingSettings
from app.server.errors import ApiError
from app.server.images import save_data_url

MAX_STOP_STRINGS = 4  # as OpenAI's API

_FINISH = {
    ev.StopReason.END_OF_TURN: "stop",
    ev.StopReason.MAX_TOKENS: "length",
    ev.StopReason.CONTEXT_FULL: "length",
    ev.StopReason.USER: "stop",  # a stop string ended it
}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One ``POST /v1/chat/completions``, in the core's terms."""

    messages: tuple[ChatMessage, ...]
    sampling: SamplingSettings
    tools: tuple[Mapping[str, Any], ...] | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


def _bad(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request")


def _number(body: Mapping[str, Any], key: str, kind: type, low: float, high: float) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (kind is int and not isinstance(value, int))
    ):
        raise _bad(f"'{key}' must be a {kind.__name__}.")
    if not low <= value <= high:
        raise _bad(f"'{key}' must be between {low:g} and {high:g}.")
    return kind(value)


def parse_request(body: object, base: SamplingSettings, image_dir: Path) -> ChatRequest:
    """The request ``body`` (parsed JSON) read against the server's sampling defaults.

    Raises:
        ApiError: the request is malformed (400) or an image is too large (413).
    """
    if not isinstance(body, Mapping):
        raise _bad("The request body must be a JSON object.")
    if body.get("n", 1) != 1:
        raise _bad("This server makes one choice per request ('n' must be 1).")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise _bad("'messages' must be a non-empty list.")
    images: list[Path] = []
    messages = tuple(_message(m, image_dir, images) for m in raw_messages)
    sampling = base
    changes: dict[str, Any] = {
        "temperature": _number(body, "temperature", float, 0, 2),
        "top_p": _number(body, "top_p", float, 0, 1),
        "max_tokens": _number(body, "max_completion_tokens", int, 1, 32768)
        or _number(body, "max_tokens", int, 1, 32768),
        "seed": _number(body, "seed", int, -1, 2**31 - 1),
    }
    sampling = dataclasses.replace(sampling, **{k: v for k, v in changes.items() if v is not None})
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if len(stops) > MAX_STOP_STRINGS or not all(isinstance(s, str) and s for s in stops):
        raise _bad(f"'stop' must be a text or a list of up to {MAX_STOP_STRINGS} texts.")
    tools = body.get("tools")
    if tools is not None and not (
        isinstance(tools, list) and all(isinstance(t, Mapping) for t in tools)
    ):
        raise _bad("'tools' must be a list of tool definitions.")
    options = body.get("stream_options") or {}
    return ChatRequest(
        messages=messages,
        sampling=sampling,
        tools=tuple(tools) if tools else None,
        stop=stops,
        stream=bool(body.get("stream", False)),
        include_usage=bool(isinstance(options, Mapping) and options.get("include_usage")),
    )


def _message(raw: object, image_dir: Path, images: list[Path]) -> ChatMessage:
    if not isinstance(raw, Mapping):
        raise _bad("Each message must be a JSON object.")
    try:
        role = Role("tool" if raw.get("role") == "function" else str(raw.get("role")))
    except ValueError:
        raise _bad(f"Unknown message role {raw.get('role')!r}.") from None
    content = raw.get("content")
    text_parts: list[str] = []
    own: list[str] = []
    offsets: list[int] = []
    if isinstance(content, str):
        text_parts.append(content)
    elif isinstance(content, list):
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind == "text" and isinstance(part.get("text"), str):
                text_parts.append(part["text"])
            elif kind == "image_url" and role is Role.USER:
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, Mapping) else url
                if not isinstance(url, str):
                    raise _bad("An image_url part needs a url.")
                path = save_data_url(url, image_dir, len(images))
                images.append(path)
                own.append(str(path))
                offsets.append(len("".join(text_parts)))
            else:
                raise _bad(f"Unsupported content part {kind!r} in a {role.value} message.")
    elif content is not None:
        raise _bad("A message's content must be text or a list of content parts.")
    try:
        calls = tuple(ToolCall.from_dict(c) for c in raw.get("tool_calls") or ())
        return ChatMessage(
            role,
            "".join(text_parts),
            images=tuple(own),
            tool_calls=calls,
            image_offsets=tuple(offsets),
        )
    except HerdError as exc:
        raise _bad(exc.one_line()) from None


@dataclass(slots=True)
class Reply:
    """What the response says about one completion: its id, time and model."""

    model: str
    id: str = dataclasses.field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = dataclasses.field(default_factory=lambda: int(time.time()))

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def chunk(self, delta: Mapping[str, Any], finish: str | None = None) -> dict[str, Any]:
        """One streamed ``chat.completion.chunk``."""
        choice = {"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish}
        return {**self._head("chat.completion.chunk"), "choices": [choice]}

    def usage_chunk(self, finished: ev.Finished) -> dict[str, Any]:
        """The last chunk ``stream_options.include_usage`` asks for: no choices, the usage."""
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": usage(finished)}

    def completion(self, reply: ParsedReply, finished: ev.Finished, reason: str) -> dict[str, Any]:
        """The whole ``chat.completion`` (its tool calls, if the reply is calls)."""
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.calls:
            message["content"] = reply.content or None
            message["tool_calls"] = tool_call_dicts(reply.calls)
            reason = "tool_calls"
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reason}
        return {**self._head("chat.completion"), "choices": [choice], "usage": usage(finished)}


def tool_names(tools: Sequence[Mapping[str, Any]] | None) -> frozenset[str]:
    """The function names a request offers (OpenAI's ``{"function": {"name"}}`` or bare)."""
    names = set()
    for tool in tools or ():
        spec = tool.get("function", tool)
        name = spec.get("name") if isinstance(spec, Mapping) else None
        if isinstance(name, str):
            names.add(name)
    return frozenset(names)


def tool_call_dicts(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """OpenAI's ``tool_calls``: each with an id, and its arguments as a JSON text."""
    return [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": call.name, "arguments": to_json(dict(call.arguments))},
        }
        for call in calls
    ]


def finish(finished: ev.Finished) -> str:
    """OpenAI's ``finish_reason`` for how the engine ended."""
    return _FINISH.get(finished.stop_reason, "stop")


def usage(finished: ev.Finished) -> dict[str, int]:
    """OpenAI's ``usage``: the engine's own counts."""
    prompt, done = finished.prompt_tokens, finished.generated_tokens
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def models_body(model_id: str | None, created: int) -> dict[str, Any]:
    """``GET /v1/models``: the one loaded model (none: an empty list)."""
    entry = {"id": model_id, "object": "model", "created": created, "owned_by": "herd"}
    return {"object": "list", "data": [entry] if model_id else []}


def stop_at(text: str, stops: Sequence[str]) -> int:
    """Where the first stop string starts in ``text`` (-1: none there)."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else -1
