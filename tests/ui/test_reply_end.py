"""How a reply ended stays with it: one that ended <|eom|> is kept waiting for a tool result.

Real window, real engine, tiny Llama 4 models rigged to say one token (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

from app.core.chat.messages import Role
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings, Settings
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with

TIMEOUT_MS = 60_000


def _open(qtbot, home: AppPaths, model: Path | None, max_tokens: int = 8) -> MainWindow:
    settings = Settings(
        load=LoadSettings(n_ctx=512, n_threads=1),
        sampling=SamplingSettings(temperature=0.0, max_tokens=max_tokens, seed=1),
        default_preset_id="none",  # this tiny vocabulary spells a system prompt long
    )
    window = MainWindow(home, settings)
    qtbot.addWidget(window)
    window.show()
    if model is not None:
        with qtbot.waitSignal(window.bridge.loaded, timeout=TIMEOUT_MS):
            load_with(window, model, n_ctx=512)
    return window


def test_a_reply_that_ended_eom_is_saved_waiting_for_a_tool_result(
    qtbot, tmp_path: Path, tiny_llama4_says_eom: Path
) -> None:
    home = AppPaths.under(tmp_path / "home").ensure()
    window = _open(qtbot, home, tiny_llama4_says_eom)
    try:
        with qtbot.waitSignal(window.bridge.reply_finished, timeout=TIMEOUT_MS) as finished:
            window.send_message("What is 6 times 7?")
        assert finished.args[0].stop_token == "<|eom|>"
        qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)
        assert [(m.role, m.expects_tool_result) for m in window.history] == [
            (Role.USER, False),
            (Role.ASSISTANT, True),  # the next prompt renders it ending <|eom|>, not <|eot|>
        ]
    finally:
        window.close()
    again = _open(qtbot, home, None)  # and so after a restart
    try:
        assert again.history[-1].expects_tool_result
    finally:
        again.close()


def test_undo_while_a_reply_is_written_gives_send_back(
    qtbot, tmp_path: Path, tiny_llama4_says_model: Path
) -> None:
    home = AppPaths.under(tmp_path / "home").ensure()
    window = _open(qtbot, home, tiny_llama4_says_model, max_tokens=8)
    try:
        with qtbot.waitSignal(window.bridge.reply_finished, timeout=TIMEOUT_MS):
            window.send_message("Hello")
        qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)
        before = [b.text for b in window.chat_view.bubbles]
        window.apply_settings(
            Settings(load=window.settings.load, sampling=SamplingSettings(max_tokens=5000))
        )
        with qtbot.waitSignal(window.bridge.token_batch, timeout=TIMEOUT_MS):
            window.chat_view.regenerate_requested.emit()  # offers Undo, writes a long reply
        window.conversations.undo()  # mid-reply
        assert not window.conversations.streaming
        assert not window.composer.generating and not window.chat_view.busy
        assert [b.text for b in window.chat_view.bubbles] == before
        qtbot.waitUntil(lambda: not window.bridge.busy, timeout=10_000)
    finally:
        window.close()
