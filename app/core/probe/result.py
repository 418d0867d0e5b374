"""What a probe asks (ProbeSpec) and what it found (ProbeResult), as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_DEPTHS = tuple(i / 10 for i in range(11))  # 0%, 10%, ..., 100%
DEFAULT_TRIALS = 1
ANSWER_TOKENS = 24  # a seven-digit number and a few words around it
MIN_LENGTH = 256  # shorter prompts hold little more than the question


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """The cells to run: every length × depth, ``trials`` times, each with its own needle."""

    lengths: tuple[int, ...]  # prompt lengths in tokens (requested; see fit_lengths)
    depths: tuple[float, ...] = DEFAULT_DEPTHS  # needle positions, 0 (start) to 1 (end)
    trials: int = DEFAULT_TRIALS
    seed: int = 0  # the same seed, the same haystacks and needles
    max_tokens: int = ANSWER_TOKENS


def default_lengths(n_ctx: int) -> tuple[int, ...]:
    """A few lengths up to the context: an eighth, a quarter, half, and all of it."""
    picked = {max(n_ctx // d, MIN_LENGTH) for d in (8, 4, 2, 1)}
    return tuple(sorted(n for n in picked if n <= n_ctx))


def fit_lengths(
    lengths: tuple[int, ...], n_ctx: int, answer_tokens: int
) -> tuple[list[tuple[int, int]], list[str]]:
    """Each length that fits the context, with the prompt size it is measured at.

    A length up to the context is measured at the context less room for the answer; a
    longer one is skipped. Returns (requested, target tokens) pairs and notes saying so.
    """
    room = n_ctx - answer_tokens - 1
    kept: list[tuple[int, int]] = []
    notes: list[str] = []
    for length in lengths:
        if length > n_ctx:
            notes.append(f"{length:,} tokens do not fit the {n_ctx:,}-token context: skipped.")
        elif length > room:
            kept.append((length, room))
            notes.append(
                f"{length:,} is measured at {room:,} tokens, to leave room for the answer."
            )
        else:
            kept.append((length, length))
    return kept, notes


@dataclass(frozen=True, slots=True)
class Cell:
    """One needle asked for: where it was, what came back, whether it was right."""

    length: int  # the requested length (a column of the grid)
    depth: float  # the requested depth (a row of the grid)
    trial: int
    key: str
    value: str
    answer: str
    correct: bool
    n_tokens: int  # the prompt's exact length
    needle_at: float  # where the needle landed in the filler, 0 to 1
    seconds: float


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The grid so far (complete, or cut short by a cancel)."""

    model: str  # the model's name
    path: str
    n_ctx: int
    kv_type: str
    plan: str  # where the model ran ("Plan: all on the CPU"), see probe.store.plan_key
    lengths: tuple[int, ...]  # the grid's columns (requested lengths that fit)
    depths: tuple[float, ...]  # the grid's rows
    trials: int
    cells: tuple[Cell, ...]
    seconds: float
    complete: bool
    notes: tuple[str, ...] = ()
    prompt_tok_s: float = 0.0  # the measured prompt speed the estimate used

    def counts(self, length: int, depth: float) -> tuple[int, int]:
        """(right, asked) in one cell of the grid."""
        asked = [c for c in self.cells if c.length == length and c.depth == depth]
        return sum(c.correct for c in asked), len(asked)

    def accuracy(self, length: int, depth: float) -> float | None:
        """The share of right answers in one cell; None when it was not run."""
        right, asked = self.counts(length, depth)
        return right / asked if asked else None

    def length_accuracy(self, length: int) -> float | None:
        """The share of right answers over one column (all depths)."""
        asked = [c for c in self.cells if c.length == length]
        return sum(c.correct for c in asked) / len(asked) if asked else None

    def tokens(self, length: int) -> int:
        """The mean exact prompt length of one column's cells (0 when none ran)."""
        asked = [c.n_tokens for c in self.cells if c.length == length]
        return round(sum(asked) / len(asked)) if asked else 0

    @property
    def overall(self) -> float | None:
        """The share of right answers over every cell that ran."""
        return sum(c.correct for c in self.cells) / len(self.cells) if self.cells else None

    def grid(self) -> list[list[float | None]]:
        """Accuracy per [depth][length], rows in depth order."""
        return [[self.accuracy(n, d) for n in self.lengths] for d in self.depths]

    def to_json(self) -> dict[str, Any]:
        """The machine-readable result (``herd probe --json``)."""
        return {
            "model": self.model,
            "path": self.path,
            "ctx": self.n_ctx,
            "kv_type": self.kv_type,
            "plan": self.plan,
            "lengths": list(self.lengths),
            "tokens": [self.tokens(n) for n in self.lengths],
            "depths": list(self.depths),
            "trials": self.trials,
            "grid": self.grid(),
            "overall": self.overall,
            "seconds": round(self.seconds, 1),
            "complete": self.complete,
            "prompt_tok_s": round(self.prompt_tok_s, 1),
            "notes": list(self.notes),
            "cells": [
                {
                    "length": c.length,
                    "depth": c.depth,
                    "trial": c.trial,
                    "key": c.key,
                    "value": c.value,
                    "answer": c.answer,
                    "correct": c.correct,
                    "tokens": c.n_tokens,
                    "needle_at": round(c.needle_at, 4),
                    "seconds": round(c.seconds, 2),
                }
                for c in self.cells
            ],
        }
