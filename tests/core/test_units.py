"""One way to write sizes and counts, everywhere in Herd."""

from __future__ import annotations

import pytest

from app.core.units import count_text, size_text

MiB = 1 << 20
GiB = 1 << 30


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (488 * 1024, "488 KiB"),  # the Load menu once said "0 MiB" for this
        (98_362_432, "94 MiB"),  # the demo model's file, everywhere
        (9.5 * MiB, "9.5 MiB"),
        (GiB - 100, "1.0 GiB"),  # never "1024 MiB"
        (int(61.4 * GiB), "61.4 GiB"),
        (3 << 40, "3.0 TiB"),
        (-5 * GiB, "-5.0 GiB"),
    ],
)
def test_sizes(n: float, text: str) -> None:
    assert size_text(n) == text


def test_counts() -> None:
    assert count_text(8192) == "8,192" and count_text(10_485_760) == "10,485,760"


def test_the_planner_writes_sizes_with_it() -> None:
    from app.core.plan import words

    assert words.size(98_362_432) == "94 MiB"
