"""A probe in words: the depth × length grid, the time it will take, the stored summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.probe.job import ProbeEstimate
    from app.core.probe.result import ProbeResult
    from app.core.probe.store import ProbeRecord

K, M = 1024, 1024 * 1024


def tokens_label(n: int) -> str:
    """A token count as the context slider says it: ``512``, ``8K``, ``1.5K``, ``10M``."""
    if n >= M:
        return f"{n / M:.3g}M"
    if n >= K:
        return f"{n / K:.3g}K"
    return str(n)


def plural(n: int, word: str) -> str:
    """``1 needle``, ``2 needles``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def percent(share: float | None) -> str:
    """``100%``; a cell that was not run is ``-``."""
    return "-" if share is None else f"{share * 100:.0f}%"


def duration(seconds: float) -> str:
    """``45 s``, ``4 min 10 s``, ``1 h 5 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def estimate_text(estimate: ProbeEstimate) -> str:
    """How long the probe will take, and why."""
    cells = plural(estimate.cells, "prompt")
    return (
        f"About {duration(estimate.seconds)}: {cells}, at the measured prompt speed of "
        f"{estimate.prompt_tok_s:,.0f} tokens/s (longer prompts may be slower)."
    )


def grid_text(result: ProbeResult) -> str:
    """The depth × length grid of recall, with a title and what was measured."""
    kv = f", {result.kv_type} KV cache" if result.kv_type else ""
    trials = f"{plural(result.trials, 'trial')} per cell"
    lines = [f"Recall of {result.model} at {result.n_ctx:,} tokens of context{kv} ({trials})"]
    if result.plan:
        lines.append(f"Plan: {result.plan}")
    labels = [tokens_label(n) for n in result.lengths]
    width = max(5, *(len(label) + 1 for label in labels))
    lines.append("depth " + "".join(label.rjust(width) for label in labels))
    for depth, row in zip(result.depths, result.grid(), strict=True):
        cells = "".join(percent(a).rjust(width) for a in row)
        lines.append(f"{depth * 100:4.0f}% " + cells)
    columns = (percent(result.length_accuracy(n)).rjust(width) for n in result.lengths)
    lines.append("  all " + "".join(columns))
    tokens = ", ".join(f"{tokens_label(n)}: {result.tokens(n):,}" for n in result.lengths)
    lines.append(f"Prompt tokens (mean per length): {tokens}.")
    status = "" if result.complete else " Stopped early: cells marked - were not run."
    lines.append(
        f"Overall {percent(result.overall)} of {plural(len(result.cells), 'needle')}, in "
        f"{duration(result.seconds)}.{status}"
    )
    lines.extend(f"Note: {note}" for note in result.notes)
    return "\n".join(lines)


def recall_words(records: Sequence[ProbeRecord], kv_type: str) -> str:
    """The stored summary for one KV type: ``Recall checked at 32K: 100%; at 128K: 80%``.

    Each tested context says how many needles were found over the whole probe at it; of
    several plans at one context, the latest record speaks. "" when there is none.
    """
    latest: dict[int, ProbeRecord] = {}
    for record in records:
        if record.kv_type != kv_type:
            continue
        if record.n_ctx not in latest or record.when >= latest[record.n_ctx].when:
            latest[record.n_ctx] = record
    if not latest:
        return ""
    parts = [f"at {tokens_label(n)}: {percent(latest[n].overall)}" for n in sorted(latest)]
    return "Recall checked " + "; ".join(parts)
