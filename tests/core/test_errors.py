"""A message and its hint on one line read as two sentences, never run together."""

from __future__ import annotations

from app.core.errors import HerdError, one_line


def test_message_and_hint_are_two_sentences() -> None:
    assert one_line("File not found: pul", "Check the path.") == (
        "File not found: pul. Check the path."
    )
    assert one_line("It failed.", "Retry.") == "It failed. Retry."
    assert one_line("What now?", " Retry. ") == "What now? Retry."
    assert one_line("Only a message", "") == "Only a message"
    assert HerdError("Model not found: x", "Pick another.").one_line() == (
        "Model not found: x. Pick another."
    )
