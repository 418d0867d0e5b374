"""Forgiving JSON for the settings' frozen dataclasses: each field read as its default's type.

A value of the wrong type gives the field's default (with a log line); unknown keys are
ignored. Used by :mod:`app.core.settings`, which adds ranges and the file's versions.
"""

from __future__ import annotations

import dataclasses
import logging
from enum import Enum
from typing import Any

logger = logging.getLogger(__name__)


def default_of(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls``."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def coerce(data: dict[str, Any], name: str, default: Any) -> Any:
    """``data[name]`` converted to the type of ``default``, or ``default`` if it cannot be."""
    if name not in data:
        return default
    value = data[name]
    try:
        if isinstance(default, Enum):
            return type(default)(value)
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
        elif isinstance(default, int):
            if isinstance(value, int | float) and not isinstance(value, bool):
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                return int(value)
        elif isinstance(default, float):
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif isinstance(default, str):
            if isinstance(value, str):
                return value
        elif isinstance(default, tuple):
            if isinstance(value, list | tuple):
                return tuple(tuple(v) if isinstance(v, list) else v for v in value)
        else:
            return value
    except (TypeError, ValueError):
        pass
    logger.warning("ignoring setting %s=%r; using %r", name, value, default)
    return default


def to_jsonable(obj: Any) -> dict[str, Any]:
    """A dataclass instance as JSON-safe values (enums by value, tuples as lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[f.name] = value
    return out


def from_jsonable(cls: type, data: dict[str, Any]) -> Any:
    """Inverse of :func:`to_jsonable`: each field ``data`` has, coerced; defaults elsewhere."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = coerce(data, f.name, default_of(cls, f.name))
    return cls(**kwargs)
