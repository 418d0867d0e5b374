"""What this machine can run of Llama 4 before anything is downloaded: the first-run advice.

Herd starts on its tiny bundled demo model. The first thing a newcomer needs is what to get
instead: which Llama 4 (Scout or Maverick), which quant, and about how fast, or why none
fits. No file exists yet, so sizes are estimated from the models' parameter counts (Meta:
Scout 109B, Maverick 400B) and each quant's bits per weight (llama.cpp's quantize README:
Q2_K 3.35, Q3_K_M 3.91, Q4_K_M 4.84, Q5_K_M 5.68, Q6_K 6.56; the block formats Q8_0 8.5,
IQ2_XXS 2.06, IQ1_S 1.56); the verdict is :func:`app.core.hub.verdict.judge`'s. The Model
Manager then shows the real files and the planner's verdict on their headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.hardware.probe import Hardware
from app.core.hub.verdict import Fit, Verdict, judge, need_and_have, tier, too_coarse
from app.core.units import size_text

__all__ = ["FAMILIES", "Option", "Outlook", "outlook"]

BITS = {
    "Q8_0": 8.5, "Q6_K": 6.56, "Q5_K_M": 5.68, "Q4_K_M": 4.84, "Q3_K_M": 3.91,
    "Q2_K": 3.35, "IQ2_XXS": 2.06, "IQ1_S": 1.56,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Family:
    """A Llama 4 model and the repository Herd suggests for it."""

    name: str  # "Scout"
    params: float  # total parameters
    repo_id: str
    quants: tuple[str, ...]  # best first


FAMILIES = (
    Family(
        "Maverick",
        400e9,
        "unsloth/Llama-4-Maverick-17B-128E-Instruct-GGUF",
        ("Q4_K_M", "Q3_K_M", "Q2_K"),
    ),
    Family(
        "Scout",
        109e9,
        "unsloth/Llama-4-Scout-17B-16E-Instruct-GGUF",
        ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K", "IQ2_XXS", "IQ1_S"),
    ),
)


@dataclass(frozen=True, slots=True)
class Option:
    """One Llama 4 quant judged for this machine."""

    family: Family
    quant: str
    size: int  # estimated bytes
    verdict: Verdict

    @property
    def title(self) -> str:
        """``Llama 4 Scout Q4_K_M``."""
        return f"Llama 4 {self.family.name} {self.quant}"

    def describe(self) -> str:
        """``Llama 4 Scout Q4_K_M (about 61 GiB): experts in CPU memory at about 9 tok/s``."""
        caveat = " Very low precision: answers are noticeably worse." if self.low_quality else ""
        return f"{self.title} (about {size_text(self.size)}): {self.verdict.text()}.{caveat}"

    @property
    def low_quality(self) -> bool:
        """Whether the quant is so small that answers clearly suffer."""
        return too_coarse(self.quant)


@dataclass(frozen=True, slots=True)
class Outlook:
    """The advice: the option to get, or why nothing fits and what to do."""

    best: Option | None
    why_not: str = ""
    what_to_do: str = ""


def estimate(family: Family, quant: str) -> int:
    """A quant's size in bytes, from the parameter count and its bits per weight."""
    return int(family.params * BITS[quant] / 8)


def options(hardware: Hardware) -> list[Option]:
    """Every suggested quant of both models, judged for ``hardware``."""
    found = []
    for family in FAMILIES:
        for quant in family.quants:
            size = estimate(family, quant)
            found.append(Option(family, quant, size, judge(size, family.name, hardware)))
    return found


def outlook(hardware: Hardware) -> Outlook:
    """The Llama 4 to get on ``hardware``.

    In this order: a quant of 2.5 bits or more at a chatting speed (Maverick first, the
    larger model); one at half that speed (Scout first); a very low precision one at a
    chatting speed; whatever runs at all. Within a rule, the largest (all on the GPU first).
    """
    judged = [(o, tier(o.quant, o.verdict)) for o in options(hardware)]
    maverick_first = list(FAMILIES)
    scout_first = maverick_first[::-1]
    for rank, order in ((0, maverick_first), (1, scout_first), (2, scout_first), (3, scout_first)):
        for family in order:
            found = [o for o, t in judged if o.family is family and t is not None and t <= rank]
            if found:
                return Outlook(_largest(found))
    return _nothing_fits(hardware)


def _nothing_fits(hardware: Hardware) -> Outlook:
    family = FAMILIES[-1]
    quant = family.quants[-1]
    size = estimate(family, quant)
    need, have = need_and_have(size, hardware)
    return Outlook(
        None,
        why_not=(
            f"Even the smallest Llama 4 (Llama 4 {family.name} {quant}, about "
            f"{size_text(size)}) needs about {size_text(need)} free with its working "
            f"memory; this computer has {have} free."
        ),
        what_to_do=(
            "Close other programs and look again, use a computer with more memory (Scout "
            "wants about 64 GiB for a good quant), or spread Maverick over several "
            "computers (see the README)."
        ),
    )


def _largest(found: list[Option]) -> Option:
    return max(found, key=lambda o: (o.verdict.fit is Fit.ALL_GPU, o.size))
