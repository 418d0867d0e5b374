"""How Herd writes sizes and counts, everywhere: one formatter each.

Sizes are binary (a GiB is 2**30 bytes, as memory is counted, and as the planner and
llama.cpp report it): ``61.4 GiB``, ``94 MiB``, ``8.5 MiB``, ``488 KiB``, ``512 B``. One
decimal below ten units, none above, except GiB, which keeps one (memory plans are read
to the tenth). Counts have thousands separators: ``8,192``.
"""

from __future__ import annotations

__all__ = ["count_text", "size_text"]

_UNITS = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def size_text(n: float) -> str:
    """Bytes as Herd writes them (see the module's notes); negative sizes keep their sign."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    for index, (scale, unit) in enumerate(_UNITS):
        if n >= scale:
            value = n / scale
            decimals = 1 if unit in ("GiB", "TiB") or value < 10 else 0
            text = f"{value:.{decimals}f}"
            if float(text) >= 1024 and index > 0:  # 1023.7 MiB reads as 1.0 GiB
                return f"{sign}1.0 {_UNITS[index - 1][1]}"
            return f"{sign}{text} {unit}"
    return f"{sign}{int(n)} B"


def count_text(n: int) -> str:
    """A count with thousands separators: ``8,192``."""
    return f"{n:,}"
