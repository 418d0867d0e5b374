"""The panel's own lines about a plan: the verdict, the expert count, the speed, the KV cost.

The reasons themselves are the planner's (:mod:`app.core.plan.words`); these lines only say
what the controls next to them mean, in the same numbers. Nothing here suggests what the
window cannot do (reading weights from disk is a ``herd chat`` flag only).
"""

from __future__ import annotations

import html

from app.core.plan.planner import Plan
from app.core.units import count_text, size_text

FIND_QUANT = (
    " Download models… (Ctrl+Shift+M) lists the quants of this model with whether each fits"
    " this machine."
)


def has_gpu(plan: Plan) -> bool:
    """Whether the plan has a GPU to put expert layers on."""
    return any(d.kind == "gpu" for d in plan.devices)


def pinned_short(plan: Plan, pinned: int | None) -> bool:
    """Whether more expert layers are pinned on the GPU than fit there."""
    return pinned is not None and has_gpu(plan) and pinned > len(plan.gpu_expert_layers)


def expert_text(plan: Plan, pinned: int | None, bad: str) -> str:
    """The expert slider's value: how many, pinned or automatic, and how many fit."""
    n, top = len(plan.gpu_expert_layers), plan.n_moe_layers
    if pinned is None:
        return f"{n} of {top} · automatic: the most that fit"
    if pinned_short(plan, pinned):
        return (
            f"{pinned} of {top} · pinned; <b style='color:{bad}'>only"
            f" {plan.max_gpu_expert_layers} fit</b>"
        )
    return f"{pinned} of {top} · pinned (up to {plan.max_gpu_expert_layers} fit)"


def no_slider_text(plan: Plan) -> str:
    """Why there is no expert slider: a dense model, or no GPU."""
    if not plan.n_moe_layers:
        return "none: a dense model reads every weight for every token"
    return f"in system RAM for all {plan.n_moe_layers} MoE layers: there is no GPU"


def speed_text(plan: Plan) -> str:
    """The predicted decode speed, and what it reads from where; none for a misfit."""
    if not plan.fits:
        return "none: this plan does not fit, so it would not load"
    n_cpu = len(plan.cpu_expert_layers)
    if not plan.n_moe_layers:
        where = "a dense model: every weight is read for every token"
    elif not has_gpu(plan):
        where = "every weight is read from system RAM"
    elif n_cpu:
        where = f"the experts of {n_cpu} layers are read from system RAM"
    else:
        where = "every expert is read from GPU memory"
    return f"about <b>{plan.predicted_decode_tok_s:.1f} tokens/s</b>; {where}"


def kv_text(plan: Plan) -> str:
    """The KV cache's cost at this context, and with swa_full on."""
    tokens = count_text(plan.n_ctx)
    return (
        f"<b>{size_text(plan.kv_bytes)}</b> for {tokens} tokens ({plan.type_k}, swa_full off;"
        f" {size_text(plan.kv_full_bytes)} with it on)"
    )


def verdict_text(plan: Plan, pinned: int | None, good: str, bad: str) -> str:
    """Fits or not, why not, and the fix the window offers."""
    most = count_text(plan.max_ctx)
    if plan.fits:
        return f"<b style='color:{good}'>✔ Fits.</b> Up to {most} tokens would fit."
    first = plan.reasons[0] if plan.reasons else "Does not fit."
    first = html.escape(first.removeprefix("Does not fit:").strip())
    if pinned_short(plan, pinned):
        first += " Press Auto to put as many as fit on the GPU."
    elif not plan.max_ctx:
        first += html.escape(FIND_QUANT)
    elif most not in first:
        first += f" The largest context that fits is {most} tokens."
    return f"<b style='color:{bad}'>✘ Does not fit:</b> {first}"


def why(plan: Plan) -> list[str]:
    """The planner's reasons, less the verdict when it is already said next to Load."""
    reasons = list(plan.reasons)
    if not plan.fits and reasons and reasons[0].startswith("Does not fit"):
        del reasons[0]
    return reasons
