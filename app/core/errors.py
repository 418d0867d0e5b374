"""The errors Herd shows to people.

Every error that crosses the core boundary is a :class:`HerdError` carrying a one-line
``user_message`` (what went wrong) and a ``hint`` (what to do about it).
"""

from __future__ import annotations


class HerdError(Exception):
    """Base of every user-facing error: what went wrong, what to do, and where the log is."""

    def __init__(self, user_message: str, hint: str = "", *, log_path: str = "") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.hint = hint
        self.log_path = log_path  # the log that says more ("" when there is none)

    def one_line(self) -> str:
        """The message and hint as a single line, for a terminal or a status bar."""
        return one_line(self.user_message, self.hint)


def one_line(message: str, hint: str = "") -> str:
    """A message and its hint as one line: two sentences, never run together."""
    message = message.rstrip()
    if hint and message and message[-1] not in ".!?:;":
        message += "."
    return f"{message} {hint.strip()}".strip()


class ContextFullError(HerdError):
    """A prompt that does not fit the loaded model's context (the message has the numbers)."""


class ModelFileError(HerdError, ValueError):
    """A model file that is missing, not a GGUF, truncated or corrupt."""


class UnsupportedModelError(HerdError, ValueError):
    """A readable GGUF that Herd cannot run (architecture, layout)."""


class TemplateError(HerdError, ValueError):
    """A chat template that cannot be rendered."""


class EngineError(HerdError, RuntimeError):
    """The engine process failed a request."""


class EngineCrashedError(EngineError):
    """The engine process died; ``log_tail`` holds its last log lines."""

    def __init__(self, user_message: str, hint: str = "", log_tail: str = "") -> None:
        super().__init__(user_message, hint)
        self.log_tail = log_tail


class HardwareSpecError(HerdError, ValueError):
    """A hardware description (a size, a profile name, flags) that makes no sense."""
