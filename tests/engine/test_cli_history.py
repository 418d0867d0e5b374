"""``herd chat`` keeps each reply in its history as the model ended it: <|eot|> or <|eom|>.

The command runs in this process (its engine, as always, in a child process) so the
history it sends with each turn can be looked at; the rendering of that history is
:mod:`app.core.chat.llama4_format`'s (tested in tests/core).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.__main__ import build_parser
from app.cli import EXIT_OK, chat
from app.core.chat.messages import ChatMessage, Role
from app.core.engine.client import EngineClient
from app.core.paths import AppPaths
from app.core.settings import Settings


def _histories(
    model: Path, paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> list[list[ChatMessage]]:
    """Chat two turns greedily; returns the history each turn sent to the engine."""
    sent: list[list[ChatMessage]] = []
    real_chat = EngineClient.chat

    def recording(
        self: EngineClient, history: Sequence[ChatMessage], *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        sent.append(list(history))
        return real_chat(self, history, *args, **kwargs)

    monkeypatch.setattr(EngineClient, "chat", recording)
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\nsecond\n"))
    args = build_parser().parse_args(
        ["chat", str(model), "--temperature", "0", "--max-tokens", "4", "--threads", "1"]
    )
    assert chat(args, paths, Settings()) == EXIT_OK
    assert len(sent) == 2
    return sent


@pytest.mark.parametrize(
    ("fixture", "waits"), [("tiny_llama4_says_eom", True), ("tiny_llama4_says_eot", False)]
)
def test_a_reply_that_ended_eom_is_kept_waiting_for_a_tool_result(
    fixture: str,
    waits: bool,
    paths: AppPaths,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    second = _histories(request.getfixturevalue(fixture), paths, monkeypatch)[1]
    assert [m.role for m in second] == [Role.USER, Role.ASSISTANT, Role.USER]
    assert second[1].expects_tool_result is waits  # rendered again ending <|eom|> (or <|eot|>)
