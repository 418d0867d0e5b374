"""Sampling per chat, in the side panel: saved with the chat, used by its next reply, reset.

Real window, real engine: a tiny Llama 4 rigged to repeat one word and never stop, so the
reply's length is exactly the chat's ``max_tokens``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton

from app.core import events as ev
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings, Settings
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with

TIMEOUT_MS = 60_000
DEFAULT_MAX = 8


def _open(qtbot, home: AppPaths, model: Path | None) -> MainWindow:
    settings = Settings(
        load=LoadSettings(n_ctx=512, n_threads=1),
        sampling=SamplingSettings(temperature=0.0, max_tokens=DEFAULT_MAX, seed=1),
        default_preset_id="none",
    )
    window = MainWindow(home, settings)
    qtbot.addWidget(window)
    window.show()
    if model is not None:
        with qtbot.waitSignal(window.bridge.loaded, timeout=TIMEOUT_MS):
            load_with(window, model, n_ctx=512)
    return window


def _reply(qtbot, window: MainWindow, text: str) -> ev.Finished:
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=TIMEOUT_MS) as finished:
        assert window.send_message(text)
    qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)
    return finished.args[0]


def test_a_chats_own_sampling_is_saved_used_and_reset(
    qtbot, tmp_path: Path, tiny_llama4_says_model: Path
) -> None:
    home = AppPaths.under(tmp_path / "home").ensure()
    window = _open(qtbot, home, tiny_llama4_says_model)
    panel = window.sampling_panel
    try:
        assert panel.isHidden() and not panel.toggle_action.isChecked()
        (button,) = [
            b
            for b in window.chat_header.findChildren(QToolButton)
            if b.defaultAction() is panel.toggle_action
        ]
        button.click()  # the header's Sampling button (the Chat menu has the same action)
        assert panel.isVisible() and button.isChecked()
        assert panel.fields["max_tokens"].value() == DEFAULT_MAX  # a new chat: the defaults
        assert not panel.reset_button.isEnabled()
        panel.fields["max_tokens"].setValue(3)
        assert panel.reset_button.isEnabled()
        tuned = _reply(qtbot, window, "Hello")
        assert (tuned.generated_tokens, tuned.stop_reason) == (3, ev.StopReason.MAX_TOKENS)
        first = window.conversations.session.conversation_id
        assert first is not None

        qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
        assert panel.fields["max_tokens"].value() == DEFAULT_MAX  # a new chat starts anew
        assert _reply(qtbot, window, "Hello").generated_tokens == DEFAULT_MAX
    finally:
        window.close()

    again = _open(qtbot, home, tiny_llama4_says_model)  # a restart, on the same history
    panel = again.sampling_panel
    try:
        assert panel.isVisible() and panel.toggle_action.isChecked()  # still open
        again.sidebar.select(first)
        assert panel.fields["max_tokens"].value() == 3
        assert panel.reset_button.isEnabled()
        assert _reply(qtbot, again, "More").generated_tokens == 3

        panel.reset_button.click()  # back to the model defaults
        assert panel.fields["max_tokens"].value() == DEFAULT_MAX
        assert not panel.reset_button.isEnabled()
        assert again.store.get(first).sampling is None
        assert _reply(qtbot, again, "More").generated_tokens == DEFAULT_MAX
        panel.toggle_action.trigger()
        assert panel.isHidden()
    finally:
        again.close()
    last = _open(qtbot, home, None)
    try:
        assert last.sampling_panel.isHidden()  # closed is remembered too
    finally:
        last.close()


def test_changed_defaults_show_in_a_chat_that_uses_them(qtbot, tmp_path: Path) -> None:
    home = AppPaths.under(tmp_path / "home").ensure()
    window = _open(qtbot, home, None)
    try:
        window.apply_settings(
            Settings(load=window.settings.load, sampling=SamplingSettings(max_tokens=100))
        )
        assert window.sampling_panel.fields["max_tokens"].value() == 100
        assert window.conversations.sampling().max_tokens == 100
    finally:
        window.close()
