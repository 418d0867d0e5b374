"""Token budget: fit a conversation into the model's context, and the token meter.

A conversation plus the room kept for the reply must fit in ``n_ctx`` tokens. When it does
not, the conversation's :class:`OverflowPolicy` decides: stop and say so (the default), or
drop the oldest turns while keeping the system prompt, the pinned messages and the newest
exchange.

Counting is the expensive part: the counter renders the conversation and tokenizes it in
the engine process, one round trip per call. :func:`fit_conversation` calls it once when
the conversation fits, and at most ``2 + ceil(log2(turns))`` times when it must drop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.core.chat.messages import ChatMessage, Role
from app.core.errors import HerdError

__all__ = [
    "ContextFullError",
    "Counter",
    "Fitted",
    "MeterLevel",
    "OverflowPolicy",
    "TokenBudget",
    "TokenMeter",
    "fit_conversation",
    "meter",
    "reply_reserve",
]

Counter = Callable[[Sequence[ChatMessage]], int]
"""Tokens in a conversation as the model will see it (the rendered prompt)."""

REPLY_SHARE = 4
"""The reply's reserve is at most ``n_ctx // REPLY_SHARE``: a quarter of the context."""

WARN_FRACTION = 0.8


class OverflowPolicy(StrEnum):
    """What a conversation does when it no longer fits the context."""

    STOP = "stop"  # refuse to send and say so (the default)
    DROP_OLDEST = "drop_oldest"  # leave out the oldest whole turns until it fits


class MeterLevel(StrEnum):
    """How full the token meter is, for its colour."""

    OK = "ok"
    WARN = "warn"  # at least 80 % used
    FULL = "full"  # everything used


class ContextFullError(HerdError):
    """A conversation that does not fit the model's context under its policy.

    Attributes:
        needed: Tokens the conversation needs, reply reserve included.
        n_ctx: The context length.
        reserve: Tokens kept for the reply.
    """

    def __init__(
        self,
        user_message: str,
        hint: str = "",
        *,
        needed: int = 0,
        n_ctx: int = 0,
        reserve: int = 0,
    ) -> None:
        super().__init__(user_message, hint)
        self.needed = needed
        self.n_ctx = n_ctx
        self.reserve = reserve


def reply_reserve(max_tokens: int, n_ctx: int) -> int:
    """Tokens to keep free for the reply: ``max_tokens``, but at most a quarter of the context.

    A long ``max_tokens`` (2,048 by default) on a small context would otherwise leave no room
    for the conversation itself; the cap keeps three quarters for the prompt. A reply that
    runs past the reserve still stops cleanly when the context is full.

    Args:
        max_tokens: The sampling settings' reply length limit.
        n_ctx: The loaded context length.

    Returns:
        A number in ``[0, n_ctx // 4]``.
    """
    return max(0, min(max_tokens, n_ctx // REPLY_SHARE))


@dataclass(frozen=True, slots=True)
class TokenMeter:
    """Tokens used out of the context, for the chat's meter.

    Attributes:
        used: Tokens in use (the prompt, plus the reply while it streams).
        total: The context length; 0 when no model is loaded.
    """

    used: int
    total: int

    @property
    def fraction(self) -> float:
        """``used / total`` clamped to [0, 1] (0 when there is no context)."""
        if self.total <= 0:
            return 0.0
        return min(1.0, max(0.0, self.used / self.total))

    @property
    def level(self) -> MeterLevel:
        """OK, WARN from 80 % used, FULL from 100 %."""
        if self.total <= 0:
            return MeterLevel.OK
        ratio = self.used / self.total
        if ratio >= 1.0:
            return MeterLevel.FULL
        if ratio >= WARN_FRACTION:
            return MeterLevel.WARN
        return MeterLevel.OK

    @property
    def text(self) -> str:
        """Like ``"1,234 / 8,192 tokens"`` (just ``"1,234 tokens"`` with no context)."""
        if self.total <= 0:
            return f"{self.used:,} tokens"
        return f"{self.used:,} / {self.total:,} tokens"


def meter(used: int, total: int) -> TokenMeter:
    """The token meter for ``used`` of ``total`` tokens (negative numbers count as 0)."""
    return TokenMeter(max(0, used), max(0, total))


@dataclass(frozen=True, slots=True)
class Fitted:
    """A conversation fitted into the context.

    Attributes:
        messages: What to send, in order.
        dropped: Indices (into the original conversation) left out, ascending.
        prompt_tokens: Tokens in ``messages`` as rendered for the model.
        n_ctx: The context length.
        reserve: Tokens kept free for the reply.
    """

    messages: tuple[ChatMessage, ...]
    dropped: tuple[int, ...]
    prompt_tokens: int
    n_ctx: int
    reserve: int

    @property
    def meter(self) -> TokenMeter:
        """The prompt's share of the context."""
        return meter(self.prompt_tokens, self.n_ctx)


def _groups(messages: Sequence[ChatMessage], pinned: frozenset[int]) -> list[tuple[int, ...]]:
    """The droppable turns, oldest first, as tuples of message indices.

    A turn is a user message with the replies and tool results that follow it (messages
    before the first user message form one turn of their own). Never droppable: system
    messages, everything from the last user message on, and any turn holding a pinned
    message. A pinned message keeps its whole turn, so a question never loses its answer
    and an answer never stands first after the system prompt without its question.
    """
    last_user = max((i for i, m in enumerate(messages) if m.role is Role.USER), default=None)
    end = len(messages) if last_user is None else last_user
    turns: list[list[int]] = []
    for index in range(end):
        role = messages[index].role
        if role is Role.SYSTEM:
            continue
        if role is Role.USER or not turns:
            turns.append([])
        turns[-1].append(index)
    return [tuple(turn) for turn in turns if not pinned.intersection(turn)]


def fit_conversation(
    messages: Sequence[ChatMessage],
    *,
    count: Counter,
    n_ctx: int,
    reserve: int,
    policy: OverflowPolicy = OverflowPolicy.STOP,
    pinned: frozenset[int] = frozenset(),
) -> Fitted:
    """Fit ``messages`` plus ``reserve`` reply tokens into ``n_ctx`` under ``policy``.

    Args:
        messages: The whole conversation, oldest first.
        count: Tokens in a conversation as rendered for the model, e.g.
            ``lambda msgs: client.count_tokens(messages=msgs)``. Called O(log n) times.
        n_ctx: The loaded context length.
        reserve: Tokens to keep for the reply (see :func:`reply_reserve`).
        policy: What to do when the conversation does not fit.
        pinned: Indices of messages that must never be dropped (their turns stay whole).

    Returns:
        The conversation to send, what was dropped and its token count.

    Raises:
        ContextFullError: The conversation does not fit and the policy is STOP, or even the
            messages that are never dropped do not fit.
        ValueError: A pinned index is outside the conversation, or ``reserve`` is negative
            (caller bugs, not user errors).
    """
    messages = tuple(messages)
    if any(i < 0 or i >= len(messages) for i in pinned):
        raise ValueError(f"pinned indices {sorted(pinned)} outside {len(messages)} messages")
    if reserve < 0:
        raise ValueError(f"reserve must not be negative, got {reserve}")
    limit = n_ctx - reserve
    full = count(messages)
    if full <= limit:
        return Fitted(messages, (), full, n_ctx, reserve)
    if policy is OverflowPolicy.STOP:
        raise ContextFullError(
            f"This chat needs {full + reserve:,} tokens but the context holds {n_ctx:,} "
            f"(with {reserve:,} kept for the reply).",
            "Start a new chat, switch this chat's overflow policy to drop the oldest turns, "
            "or reload the model with a larger context.",
            needed=full + reserve,
            n_ctx=n_ctx,
            reserve=reserve,
        )

    turns = _groups(messages, pinned)

    def without(n_turns: int) -> tuple[tuple[ChatMessage, ...], tuple[int, ...]]:
        gone = sorted(i for turn in turns[:n_turns] for i in turn)
        gone_set = set(gone)
        kept = tuple(m for i, m in enumerate(messages) if i not in gone_set)
        return kept, tuple(gone)

    # Dropping more turns never adds tokens, so the fewest turns to drop is found by
    # bisection: the smallest k in (0, len(turns)] whose remainder fits.
    floor_msgs, floor_gone = without(len(turns))
    floor_tokens = count(floor_msgs) if turns else full
    if floor_tokens > limit:
        raise ContextFullError(
            f"Even the system prompt, the pinned messages and the last message need "
            f"{floor_tokens + reserve:,} tokens but the context holds {n_ctx:,} "
            f"(with {reserve:,} kept for the reply).",
            "Shorten the last message, unpin messages, lower the reply length, "
            "or reload the model with a larger context.",
            needed=floor_tokens + reserve,
            n_ctx=n_ctx,
            reserve=reserve,
        )
    low, high = 0, len(turns)  # remainder after dropping `low` turns overflows; `high` fits
    best = (floor_msgs, floor_gone, floor_tokens)
    while high - low > 1:
        mid = (low + high) // 2
        kept, gone = without(mid)
        tokens = count(kept)
        if tokens <= limit:
            high, best = mid, (kept, gone, tokens)
        else:
            low = mid
    kept, gone, tokens = best
    return Fitted(kept, gone, tokens, n_ctx, reserve)


@dataclass(frozen=True, slots=True)
class TokenBudget:
    """A conversation's context budget: the context length, reply reserve and policy.

    Attributes:
        n_ctx: The loaded context length.
        reserve: Tokens kept for the reply.
        policy: What to do when the conversation does not fit.
    """

    n_ctx: int
    reserve: int
    policy: OverflowPolicy = OverflowPolicy.STOP

    @classmethod
    def for_context(
        cls, n_ctx: int, max_tokens: int, policy: OverflowPolicy = OverflowPolicy.STOP
    ) -> TokenBudget:
        """The budget for a loaded context and a reply limit (see :func:`reply_reserve`)."""
        return cls(n_ctx, reply_reserve(max_tokens, n_ctx), policy)

    def fit(
        self,
        messages: Sequence[ChatMessage],
        count: Counter,
        pinned: frozenset[int] = frozenset(),
    ) -> Fitted:
        """:func:`fit_conversation` with this budget."""
        return fit_conversation(
            messages,
            count=count,
            n_ctx=self.n_ctx,
            reserve=self.reserve,
            policy=self.policy,
            pinned=pinned,
        )

    def meter(self, used: int) -> TokenMeter:
        """The token meter for ``used`` tokens of this context."""
        return meter(used, self.n_ctx)
