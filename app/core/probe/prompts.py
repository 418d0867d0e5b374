"""Haystack prompts of an exact token length, with the needle at a chosen depth.

Lengths are measured with the loaded model's own tokenizer, on the whole prompt as the
engine will evaluate it (the chat format's headers included), so a "4K" cell really is
4,096 tokens give or take one filler sentence, and never more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.core.chat.messages import ChatMessage, Role
from app.core.errors import HerdError
from app.core.probe.haystack import sentences
from app.core.probe.needles import Needle

TokenCounter = Callable[[Sequence[ChatMessage]], int]
"""Counts a conversation's prompt tokens exactly as the engine evaluates it."""

INTRO = (
    "Below is a long text. Somewhere in it, a secret number is mentioned. "
    "Read the whole text, then answer the question that follows it.\n\n"
)
_MAX_FITS = 10  # token counts per prompt at most (two or three are usual)


@dataclass(frozen=True, slots=True)
class HaystackPrompt:
    """One cell's prompt."""

    messages: tuple[ChatMessage, ...]
    needle: Needle
    n_tokens: int  # the whole prompt, as the engine counts it
    depth: float  # where the needle was asked to be, 0 (start) to 1 (end)
    needle_at: float  # where it is: the share of the filler text before it (characters)
    n_sentences: int  # filler sentences used


class FillerPool:
    """The filler sentences for one seed, drawn as far as a prompt needs."""

    def __init__(self, seed: int) -> None:
        """The pool for ``seed`` (the same seed, the same text)."""
        self._stream = sentences(seed)
        self._drawn: list[str] = []

    def first(self, count: int) -> list[str]:
        """The first ``count`` sentences."""
        while len(self._drawn) < count:
            self._drawn.append(next(self._stream))
        return self._drawn[:count]


def render(filler: Sequence[str], needle: Needle, depth: float) -> tuple[str, float]:
    """The user message: intro, filler with the needle after ``depth`` of it, question.

    Returns:
        The text, and the share of the filler's characters that comes before the needle.
    """
    depth = min(max(depth, 0.0), 1.0)
    sizes = [len(sentence) + 1 for sentence in filler]
    total_size, upto, k = sum(sizes), 0, 0
    for k in range(len(filler) + 1):  # the sentence boundary nearest the depth, by characters
        if k == len(filler) or abs(upto + sizes[k] - depth * total_size) > abs(
            upto - depth * total_size
        ):
            break
        upto += sizes[k]
    before, after = " ".join(filler[:k]), " ".join(filler[k:])
    body = " ".join(part for part in (before, needle.sentence, after) if part)
    total = len(before) + len(after)
    at = len(before) / total if total else depth
    return f"{INTRO}{body}\n\n{needle.question}", at


def build_prompt(
    count: TokenCounter,
    pool: FillerPool,
    target: int,
    depth: float,
    needle: Needle,
    *,
    system: str = "",
    hint: int | None = None,
) -> HaystackPrompt:
    """The prompt of at most ``target`` tokens (and within a sentence of it).

    ``hint``: a sentence count that landed near ``target`` before (another depth of the
    same length), to start from.

    Raises:
        HerdError: ``target`` is too short for even the question.
    """

    def prompt(n: int) -> tuple[tuple[ChatMessage, ...], float, int]:
        text, at = render(pool.first(n), needle, depth)
        head = (ChatMessage(Role.SYSTEM, system),) if system else ()
        messages = (*head, ChatMessage(Role.USER, text))
        return messages, at, count(messages)

    empty = prompt(0)
    if empty[2] > target:
        raise HerdError(
            f"A probe prompt of {target:,} tokens is too short: the question alone takes "
            f"{empty[2]:,}.",
            "Choose longer lengths (--lengths).",
        )
    sample = hint if hint else 32
    per = max((prompt(sample)[2] - empty[2]) / sample, 1.0)  # tokens per sentence
    n = hint or max(int((target - empty[2]) / per), 0)
    best: tuple[int, tuple[tuple[ChatMessage, ...], float, int]] = (0, empty)
    for _ in range(_MAX_FITS):
        got = prompt(n)
        tokens = got[2]
        if tokens <= target and n >= best[0]:
            best = (n, got)
        if tokens <= target and target - tokens < 2 * per:
            break
        step = int((target - tokens) / per)
        n = max(n + (step if step else (1 if tokens < target else -1)), 0)
    n, (messages, at, tokens) = best
    return HaystackPrompt(messages, needle, tokens, depth, at, n)
