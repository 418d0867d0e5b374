"""Continue: extend the last reply where it stopped, as one reply.

The prompt is the conversation with the last assistant message left open (the format's
``continue_final_message``: no end-of-turn after it), so the model goes on with the same
turn; the new text is appended to that same message, and its figures cover the whole reply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from app.core import events as ev
from app.core.chat.messages import Role
from app.core.chat.store_schema import MessageState, StoredMessage

__all__ = ["continuable", "continued"]


def continuable(messages: Sequence[StoredMessage]) -> StoredMessage | None:
    """The reply Continue would extend: the last message, if it is a written reply.

    Not a reply that waits for a tool result (it ended ``<|eom|>``), one with tool calls
    (its turn is a call, not text), one still being written, or one with no text yet.
    """
    last = messages[-1] if messages else None
    if (
        last is None
        or last.role is not Role.ASSISTANT
        or last.state is MessageState.STREAMING
        or last.expects_tool_result
        or last.tool_calls
        or not last.content
    ):
        return None
    return last


def continued(before: StoredMessage, finished: ev.Finished) -> ev.Finished:
    """The whole reply after a continuation: ``before``'s text and tokens plus the new ones.

    Speed, prompt and why it stopped are the continuation's; the wait for the first word
    stays the original reply's (a person waited for that).
    """
    stats = before.stats
    return dataclasses.replace(
        finished,
        text=before.content + finished.text,
        generated_tokens=(stats.generated_tokens or 0) + finished.generated_tokens,
        time_to_first_token_s=stats.first_token_s or finished.time_to_first_token_s,
    )
