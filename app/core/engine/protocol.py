"""Messages between the app and the engine process: one JSON object per line.

Requests go app -> engine on the child's stdin; events come back on a private pipe.
Every request but ``stop`` carries an ``id`` that the events answering it repeat.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from app.core import events as ev

# Request operations.
OP_LOAD = "load"  # args: path, settings, projector ("" = text only)
# A chat prompt travels as "segments": [[text, is_format], ...]; only the format's text has
# its special tokens parsed (see prompt_tokens). A raw "prompt"/"text" is parsed whole.
OP_GENERATE = (
    "generate"  # args: prompt | segments, sampling, stop_tokens[, images, image_placeholder]
)
OP_TOKENIZE = "tokenize"  # args: text | segments[, images, image_placeholder]
OP_UNLOAD = "unload"
OP_DEVICES = "devices"
OP_STOP = "stop"  # out of band: stops the running load or generation at once
OP_SHUTDOWN = "shutdown"


@dataclass(frozen=True, slots=True)
class Request:
    """One request to the engine."""

    op: str
    id: int = 0
    args: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        """One line of JSON."""
        return (json.dumps({"op": self.op, "id": self.id, "args": self.args}) + "\n").encode()

    @classmethod
    def decode(cls, line: bytes | str) -> Request:
        """Parse a line written by encode()."""
        data = json.loads(line)
        return cls(op=str(data["op"]), id=int(data.get("id", 0)), args=dict(data.get("args", {})))


_EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        ev.Progress,
        ev.Loaded,
        ev.Unloaded,
        ev.Token,
        ev.Finished,
        ev.TokenCount,
        ev.DeviceList,
        ev.Failed,
        ev.EngineCrashed,
    )
}


def encode_event(request_id: int, event: ev.EngineEvent) -> bytes:
    """Serialize an event answering request ``request_id``."""
    payload = dataclasses.asdict(event)
    payload["type"] = type(event).__name__
    payload["id"] = request_id
    return (json.dumps(payload, default=_enum_value) + "\n").encode()


def decode_event(line: bytes | str) -> tuple[int, ev.EngineEvent]:
    """Parse a line written by encode_event(); returns (request id, event)."""
    data = json.loads(line)
    request_id = int(data.pop("id"))
    cls = _EVENT_TYPES[data.pop("type")]
    if cls is ev.Loaded:
        facts = data["facts"]
        facts["warnings"] = tuple(facts.get("warnings", ()))
        facts["overridden_tensors"] = tuple(tuple(t) for t in facts.get("overridden_tensors", ()))
        facts["buffers"] = tuple(tuple(b) for b in facts.get("buffers", ()))
        facts["plan_notes"] = tuple(facts.get("plan_notes", ()))
        return request_id, ev.Loaded(facts=ev.ModelFacts(**facts))
    if cls is ev.Finished:
        data["stop_reason"] = ev.StopReason(data["stop_reason"])
    if cls is ev.DeviceList:
        return request_id, ev.DeviceList(tuple(tuple(d) for d in data["devices"]))
    if cls is ev.EngineCrashed:
        data["log_tail"] = tuple(data.get("log_tail", ()))
    return request_id, cls(**data)


def _enum_value(obj: Any) -> Any:
    value = getattr(obj, "value", None)
    if value is None:
        raise TypeError(f"cannot serialize {type(obj).__name__}")
    return value
