"""The token meter moves as you type and as replies stream; overflow follows the policy."""

from __future__ import annotations

from pathlib import Path

from app.core.chat.budget import OverflowPolicy
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings, Settings
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with


def _window(qtbot, tmp_path: Path) -> MainWindow:
    settings = Settings(
        load=LoadSettings(n_ctx=256, n_threads=1),
        sampling=SamplingSettings(max_tokens=16, seed=3),
        default_preset_id="none",  # a 256-token context has no room for a system prompt
    )
    window = MainWindow(AppPaths.under(tmp_path / "home").ensure(), settings)
    qtbot.addWidget(window)
    window.show()
    return window


def test_meter_counts_the_draft_and_the_reply(qtbot, tmp_path: Path, tiny_scout: Path) -> None:
    window = _window(qtbot, tmp_path)
    try:
        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            load_with(window, tiny_scout, n_ctx=256)
        meter = window.context_meter
        assert meter.total == 256
        with qtbot.waitSignal(window.bridge.draft_counted, timeout=10_000):
            window.composer.editor.setPlainText("hello there, how are you")
        short = meter.used
        assert short > 0 and "/ 256 tokens" in meter.label.text()
        with qtbot.waitSignal(window.bridge.draft_counted, timeout=10_000):
            window.composer.editor.setPlainText("hello there, how are you " * 4)
        assert meter.used > short  # it moves as you type

        window.composer.editor.clear()
        with qtbot.waitSignal(window.bridge.reply_finished, timeout=30_000) as finished:
            window.send_message("hello")
        f = finished.args[0]
        assert meter.used == f.prompt_tokens + f.generated_tokens
    finally:
        window.close()


def test_overflow_stops_by_default_and_drops_oldest_when_chosen(
    qtbot, tmp_path: Path, tiny_scout: Path
) -> None:
    window = _window(qtbot, tmp_path)
    try:
        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            load_with(window, tiny_scout, n_ctx=256)
        session = window.conversations.session
        for i in range(12):  # a long chat, as if restored
            session.add_user(f"question {i}: tell me about the sea " * 2)
            session.begin_reply()
            session.finish_reply(f"answer {i}: the sea is wide " * 2)
        window.conversations.restore()
        assert len(window.chat_view.bubbles) == 24
        assert window.context_meter.policy is OverflowPolicy.STOP
        with qtbot.waitSignal(window.bridge.reply_failed, timeout=30_000) as failed:
            window.send_message("and now?")
        assert "context holds 256" in failed.args[0]

        window.context_meter.policy_box.setCurrentIndex(1)
        assert window.context_meter.policy is OverflowPolicy.DROP_OLDEST
        assert session.conversation.overflow_policy is OverflowPolicy.STOP  # not refreshed
        assert window.store.get(session.conversation_id).overflow_policy is (
            OverflowPolicy.DROP_OLDEST  # the chat remembers its policy
        )
        with qtbot.waitSignal(window.bridge.reply_finished, timeout=30_000) as finished:
            window.send_message("and now?")
        f = finished.args[0]
        assert f.prompt_tokens + f.generated_tokens <= 256
        assert "left out" in window.statusBar().currentMessage()
    finally:
        window.close()
