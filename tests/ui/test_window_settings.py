"""Settings and the per-chat system prompt, reached from the real window, reach the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.core import events as ev
from app.core.chat.messages import Role
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings, Settings
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with


@pytest.fixture
def window(qtbot, tmp_path: Path, tiny_scout: Path):
    settings = Settings(
        load=LoadSettings(n_ctx=512, n_threads=1),
        sampling=SamplingSettings(max_tokens=4, seed=5),
        default_preset_id="concise",
    )
    window = MainWindow(AppPaths.under(tmp_path / "home").ensure(), settings)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
        load_with(window, tiny_scout, n_ctx=512)
    yield window
    window.close()


def test_settings_dialog_changes_the_next_reply(window: MainWindow, qtbot) -> None:
    dialog = window.open_settings()
    field = dialog.sampling_page.fields["max_tokens"]
    field.setValue(6)
    with qtbot.waitSignal(dialog.settings_applied):
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert window.settings.sampling.max_tokens == 6
    # saved at once, not at exit: a crash now would not lose it
    saved = Settings.load_from(window._paths.config / "settings.json")
    assert saved.sampling.max_tokens == 6
    assert saved.last_model == str(window.models.path)  # the load was saved too
    window.apply_settings(  # greedy, and a model that never stops early, to count exactly
        Settings(
            load=window.settings.load,
            sampling=SamplingSettings(temperature=0.0, max_tokens=6, seed=5),
            default_preset_id="concise",
        )
    )
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=60_000) as finished:
        window.send_message("hello")
    assert finished.args[0].generated_tokens <= 6


def test_new_chats_start_with_the_default_preset_and_each_chat_can_change_it(
    window: MainWindow, qtbot
) -> None:
    concise = window.presets.text_for("concise")
    assert concise in window.chat_header.prompt_label.toolTip()  # what a new chat will use
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=60_000):
        window.send_message("hello")
    messages, pinned = window.conversations.session.prompt()
    assert (messages[0].role, messages[0].content) == (Role.SYSTEM, concise)
    assert 0 in pinned  # the system prompt is never dropped

    dialog = window.open_system_prompt()
    dialog.editor.setPlainText("Answer like a pirate.")
    dialog.accept()
    conversation = window.conversations.session.conversation
    assert conversation is not None and conversation.system_prompt == "Answer like a pirate."
    assert "pirate" in window.chat_header.prompt_label.text()
    with qtbot.waitSignal(window.bridge.prompt_fitted, timeout=60_000) as fitted:
        window.send_message("and again")
    assert fitted.args[0].messages[0].content == "Answer like a pirate."
    qtbot.waitSignal(window.bridge.reply_finished, timeout=60_000).wait()


def test_regenerate_without_a_model_keeps_the_reply(window: MainWindow, qtbot) -> None:
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=60_000):
        window.send_message("hello")
    qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)
    before = [b.text for b in window.chat_view.bubbles]
    with qtbot.waitSignal(window.bridge.unloaded, timeout=10_000):
        window.bridge.unload()
    window.chat_view.regenerate_requested.emit()
    assert [b.text for b in window.chat_view.bubbles] == before
    assert "Load a model" in window.statusBar().currentMessage()
    assert window.undo_banner.isHidden()


def test_escape_stops_from_anywhere_in_the_window(window: MainWindow, qtbot) -> None:
    window.apply_settings(
        Settings(
            load=window.settings.load,
            sampling=SamplingSettings(max_tokens=300),
            default_preset_id="none",
        )
    )
    window.send_message("go on and on")
    window.sidebar.search.setFocus()
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=30_000) as finished:
        qtbot.keyClick(window.sidebar.search, Qt.Key.Key_Escape)  # at once, before any token
    assert finished.args[0].stop_reason is ev.StopReason.USER
    assert finished.args[0].generated_tokens < 300
