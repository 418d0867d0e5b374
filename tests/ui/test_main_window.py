"""The chat window on the real engine with the demo model (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.core import events as ev
from app.core.chat.messages import Role
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings, Settings
from app.ui.chat.composer import Composer
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with

LOAD_TIMEOUT_MS = 60_000
REPLY_TIMEOUT_MS = 60_000
LONG_PROMPT = "Write a long story about a dragon who learns to bake bread."


def _settings(max_tokens: int) -> Settings:
    return Settings(
        load=LoadSettings(n_ctx=1024),
        sampling=SamplingSettings(seed=7, max_tokens=max_tokens),
    )


@pytest.fixture
def make_window(qtbot, tmp_path: Path) -> Iterator[Callable[..., MainWindow]]:
    """Build a MainWindow with a real EngineBridge; every one is shut down afterwards."""
    windows: list[MainWindow] = []

    def make(max_tokens: int = 16) -> MainWindow:
        paths = AppPaths.under(tmp_path / f"home{len(windows)}").ensure()
        window = MainWindow(paths, _settings(max_tokens))
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        return window

    yield make
    for window in windows:
        window.close()  # closeEvent shuts the engine down and joins every thread


@pytest.fixture
def loaded_window(make_window, smollm2_gguf: Path, qtbot) -> Callable[..., MainWindow]:
    """A window with the demo model loaded."""

    def make(max_tokens: int = 16) -> MainWindow:
        window = make_window(max_tokens)
        with qtbot.waitSignal(window.bridge.loaded, timeout=LOAD_TIMEOUT_MS):
            load_with(window, smollm2_gguf, n_ctx=1024)
        return window

    return make


def _type_and_send(qtbot, window: MainWindow, text: str) -> None:
    qtbot.keyClicks(window.composer.editor, text)
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)


def test_reply_streams_into_the_view(loaded_window, qtbot) -> None:
    window = loaded_window(max_tokens=24)
    assert window.composer.button.text() == "Send"
    assert window.model_bar.name_label.text() not in ("", "No model loaded")
    assert "context 1,024" in window.model_bar.details_label.text().replace("\u00a0", " ")
    batches: list[str] = []
    window.bridge.token_batch.connect(batches.append)

    with qtbot.waitSignal(window.bridge.reply_finished, timeout=REPLY_TIMEOUT_MS) as blocker:
        _type_and_send(qtbot, window, "Say hello in five words.")
        assert window.composer.generating
        assert window.composer.button.text() == "Stop"
    finished: ev.Finished = blocker.args[0]

    user, reply = window.chat_view.bubbles
    assert (user.role, reply.role) == (Role.USER, Role.ASSISTANT)
    assert user.text == "Say hello in five words."
    assert reply.text.strip()
    assert reply.text == finished.text == "".join(batches)
    assert "tok/s" in reply.footer
    assert "tok/s" in window.reply_status.text()
    assert f"{finished.generated_tokens} tokens generated" in window.reply_status.toolTip()
    assert window.composer.text == ""
    assert window.composer.button.text() == "Send"
    assert [m.role for m in window.history] == [Role.USER, Role.ASSISTANT]


def test_esc_stops_a_long_reply_at_once(loaded_window, qtbot) -> None:
    window = loaded_window(max_tokens=2000)
    with qtbot.waitSignal(window.bridge.token_batch, timeout=REPLY_TIMEOUT_MS):
        _type_and_send(qtbot, window, LONG_PROMPT)

    started = time.monotonic()
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=5_000) as blocker:
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Escape)
    assert time.monotonic() - started < 1.0
    finished: ev.Finished = blocker.args[0]
    assert finished.stop_reason is ev.StopReason.USER
    assert finished.generated_tokens < 2000
    assert window.chat_view.reply_text().strip()
    assert "stopped" in window.chat_view.bubbles[-1].footer
    assert not window.composer.generating


def test_engine_crash_shows_banner_and_reload_recovers(loaded_window, qtbot) -> None:
    window = loaded_window(max_tokens=2000)
    assert window.banner.isHidden()
    with qtbot.waitSignal(window.bridge.token_batch, timeout=REPLY_TIMEOUT_MS):
        _type_and_send(qtbot, window, LONG_PROMPT)

    with qtbot.waitSignal(window.bridge.engine_crashed, timeout=10_000) as blocker:
        window.bridge.client.kill()
    crash: ev.EngineCrashed = blocker.args[0]
    assert crash.exit_code == -9
    assert window.banner.isVisible()
    assert "engine stopped" in window.banner.message_label.text()
    partial = window.chat_view.reply_text()
    assert partial.strip()
    assert "interrupted" in window.chat_view.bubbles[-1].footer
    stored = window.store.messages(window.conversations.session.conversation_id)[-1]
    assert (stored.content, stored.state.value) == (partial, "incomplete")  # saved, marked
    assert not window.composer.generating
    assert window.composer.button.text() == "Send"
    assert not window.composer.button.isEnabled()

    qtbot.mouseClick(window.banner.details_button, Qt.MouseButton.LeftButton)
    assert window.banner.log_view.isVisible()
    assert "exit code: -9" in window.banner.log_view.toPlainText()

    with qtbot.waitSignal(window.bridge.loaded, timeout=LOAD_TIMEOUT_MS):
        qtbot.mouseClick(window.banner.reload_button, Qt.MouseButton.LeftButton)
    assert window.banner.isHidden()
    assert window.bridge.client.alive
    assert window.chat_view.reply_text() == partial  # the partial reply is still there

    # the conversation goes on, with the interrupted reply in its history
    window.apply_settings(_settings(max_tokens=8))
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=REPLY_TIMEOUT_MS):
        _type_and_send(qtbot, window, "Thanks!")
    roles = [m.role for m in window.history]
    assert roles == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]
    assert window.history[1].content == partial


def test_a_crash_while_idle_is_noticed(loaded_window, qtbot) -> None:
    window = loaded_window()
    with qtbot.waitSignal(window.bridge.engine_crashed, timeout=5_000):
        window.bridge.client.kill()
    assert window.banner.isVisible()
    assert window.model_bar.name_label.text() == "No model loaded"
    assert not window.composer.button.isEnabled()


def test_unload_then_composer_says_how_to_load(loaded_window, qtbot) -> None:
    window = loaded_window()
    assert window.composer.editor.placeholderText().startswith("Message")
    with qtbot.waitSignal(window.bridge.unloaded, timeout=10_000):
        qtbot.mouseClick(window.model_bar.unload_button, Qt.MouseButton.LeftButton)
    assert window.model_bar.name_label.text() == "No model loaded"
    assert window.model_bar.unload_button.isHidden()
    assert "Load…" in window.composer.editor.placeholderText()
    qtbot.keyClicks(window.composer.editor, "hello?")
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    assert window.chat_view.bubbles == []  # nothing is sent without a model


def test_a_file_that_is_not_a_model_is_refused(make_window, qtbot, tmp_path: Path) -> None:
    window = make_window()
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("not a model")
    with qtbot.waitSignal(window.bridge.load_failed, timeout=10_000):
        window.load_model(bogus)
    assert window.model_bar.name_label.text() == "Could not load notes.gguf"
    assert window.model_bar.details_label.text()
    # the reason is said once, in the error banner (with Copy), not twice
    assert window.error_banner.isVisible() and "notes.gguf" in window.error_banner.text
    assert "notes.gguf" not in window.model_bar.details_label.text()
    assert not window.composer.button.isEnabled()


def test_composer_enter_sends_and_shift_enter_breaks_the_line(qtbot) -> None:
    composer = Composer()
    qtbot.addWidget(composer)
    composer.set_ready(True)
    sent: list[str] = []

    def accept(text: str) -> None:  # the window clears the composer once the message is sent
        sent.append(text)
        composer.clear()

    composer.send_requested.connect(accept)
    qtbot.keyClicks(composer.editor, "one")
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer.editor, "two")
    assert composer.text == "one\ntwo"
    assert sent == []
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    assert sent == ["one\ntwo"]
    assert composer.text == ""
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    assert sent == ["one\ntwo"]  # an empty message is not sent

    composer.set_generating(True)
    with qtbot.waitSignal(composer.stop_requested, timeout=1_000):
        qtbot.keyClick(composer.editor, Qt.Key.Key_Escape)


def test_run_app_opens_the_model_and_remembers_it(qtbot, tmp_path: Path, smollm2_gguf) -> None:
    from app.ui.app import run_app

    paths = AppPaths.under(tmp_path).ensure()
    seen: list[str] = []

    def close_when_loaded() -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, MainWindow) and widget.isVisible():
                if widget.bridge.facts is not None:
                    seen.append(widget.model_bar.name_label.text())
                    widget.close()
                    return
        QTimer.singleShot(50, close_when_loaded)

    QTimer.singleShot(50, close_when_loaded)
    settings = dataclasses.replace(_settings(16), last_model="")
    code = run_app(paths, settings, smollm2_gguf)
    assert code == 0
    assert seen
    saved = json.loads((paths.config / "settings.json").read_text())
    assert Path(saved["last_model"]).resolve() == smollm2_gguf.resolve()


def test_pyside_signal_emit_keeps_reference_counts(qtbot) -> None:
    """PySide6 6.12.0 on Python 3.11 drops a reference to True on every ``emit``.

    True's count then reaches zero after a few thousand signals (a minute of streaming at
    30 token batches a second) and the interpreter aborts. Such a PySide6 must not be used.
    """
    import sys

    from PySide6.QtCore import QObject, Signal

    class EmitterProbe(QObject):
        changed = Signal(str)

    probe = EmitterProbe()
    before = sys.getrefcount(True)
    for _ in range(200):
        probe.changed.emit("x")
    lost = before - sys.getrefcount(True)
    if lost > 0:
        _KEEP_TRUE_ALIVE.extend([True] * lost)  # give back what this test took
    assert lost <= 0, f"this PySide6 loses a reference to True per emit ({lost} in 200)"


_KEEP_TRUE_ALIVE: list[bool] = []
