"""Needles: a random number under a random key, the question for it, and the score."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_COLOURS = (
    "amber", "cobalt", "crimson", "emerald", "ivory", "jade", "lilac", "ochre", "russet",
    "saffron", "scarlet", "silver", "teal", "umber", "violet", "copper", "indigo", "olive",
)  # fmt: skip
_ANIMALS = (
    "badger", "falcon", "heron", "lynx", "marten", "otter", "raven", "stoat", "walrus",
    "ibex", "jackal", "kestrel", "lemur", "newt", "osprey", "puffin", "quail", "tapir",
)  # fmt: skip
_SEPARATORS = re.compile(r"(?<=\d)[,\s.'_\u00a0\u202f](?=\d)")  # 4,829,173 / 4 829 173


@dataclass(frozen=True, slots=True)
class Needle:
    """One fact hidden in a haystack: ``key``'s secret number is ``value``."""

    key: str  # e.g. "cobalt otter"
    value: str  # seven digits, e.g. "4829173"

    @property
    def sentence(self) -> str:
        """The needle as it is hidden in the text."""
        return f"The secret number of the {self.key} is {self.value}."

    @property
    def question(self) -> str:
        """What the model is asked at the end of the prompt."""
        return (
            f"What is the secret number of the {self.key}, as the text says? "
            "Answer with the number only."
        )

    def found_in(self, answer: str) -> bool:
        """Whether ``answer`` contains this exact number (digit groups may be separated)."""
        joined = _SEPARATORS.sub("", answer)
        return re.search(rf"(?<!\d){self.value}(?!\d)", joined) is not None


class NeedleMaker:
    """Makes needles that differ from each other in key and number (one per cell)."""

    def __init__(self, seed: int) -> None:
        """Needles drawn from ``seed``: the same seed gives the same needles."""
        self._rng = random.Random(seed)
        self._keys: set[str] = set()
        self._values: set[str] = set()

    def next(self) -> Needle:
        """A needle whose key and number no earlier one has (keys repeat after 324)."""
        if len(self._keys) >= len(_COLOURS) * len(_ANIMALS):
            self._keys.clear()
        while True:
            key = f"{self._rng.choice(_COLOURS)} {self._rng.choice(_ANIMALS)}"
            value = str(self._rng.randrange(1_000_000, 10_000_000))
            if key not in self._keys and value not in self._values:
                self._keys.add(key)
                self._values.add(value)
                return Needle(key, value)
