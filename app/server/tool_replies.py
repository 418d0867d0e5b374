"""A streamed reply held back while it may still be a tool call, then read as one or as text."""

from __future__ import annotations

from collections.abc import Collection

from app.core.chat.llama4_format import PYTHON_START
from app.core.chat.tool_calls import ParsedReply, parse_tool_calls

# How a tool-call reply begins, in each form Llama 4 writes (see app.core.chat.tool_calls).
_STARTS = ("{", "[", PYTHON_START, "<function=")


class HeldReply:
    """Passes a reply's text on, except while what came so far may be the start of a call.

    A reply is a tool call only as a whole, so once its start is plainly text, the text
    streams as it comes; a reply that starts like a call is held to the end and read then.
    """

    def __init__(self, names: Collection[str] | None) -> None:
        """``names``: the offered functions; None (no tools): every reply is text."""
        self._names = names
        self._text = names is None
        self._held = ""

    def feed(self, piece: str) -> str:
        """The text to send now for ``piece`` ("" while it is held)."""
        if self._text:
            return piece
        self._held += piece
        head = self._held.lstrip()
        if not head or any(s.startswith(head) or head.startswith(s) for s in _STARTS):
            return ""
        self._text = True
        out, self._held = self._held, ""
        return out

    def end(self) -> ParsedReply:
        """What was held, as the reply's tool calls or as text still to send."""
        held, self._held = self._held, ""
        if self._text or not held.strip():
            return ParsedReply(held)
        return parse_tool_calls(held, self._names or ())
