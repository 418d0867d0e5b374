"""The first-run hint: the demo model said to be a demo, and which Llama 4 to get instead."""

from __future__ import annotations

import html
from collections.abc import Callable

from app.core.demo import DEMO_NAME
from app.core.first_run import Outlook
from app.ui.chat.empty_state import Action


def demo_hint(outlook: Outlook, get: Callable[[str], object]) -> tuple[str, list[Action]]:
    """The empty chat's text and buttons while the demo model is loaded.

    ``get(repo_id)`` opens the Model Manager on that repository ("" on its catalog).
    """
    intro = (
        f"You are chatting with Herd's <b>tiny demo model</b> ({DEMO_NAME}): a stand-in "
        "to try the app with. It is not Llama 4, and its answers are simple."
    )
    best = outlook.best
    if best is None:
        text = f"{intro}<br><br>{html.escape(outlook.why_not)}<br>{html.escape(outlook.what_to_do)}"
        return text, [("Browse models…", lambda: get(""))]
    text = (
        f"{intro}<br><br>On this computer Herd suggests <b>{html.escape(best.describe())}</b>"
        "<br><span style='font-size:9pt'>Estimated from its size; the Model Manager shows "
        "the real files and the plan for each.</span>"
    )
    repo = best.family.repo_id
    return text, [(f"Get {best.title}…", lambda: get(repo)), ("Browse models…", lambda: get(""))]
