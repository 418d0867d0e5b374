"""The whole chat flow in the real window, on the real engine with a tiny Llama 4.

Send, stream, regenerate, edit and resend, delete and undo, search, export, and a restart
that brings everything back: each saved in a real SQLite file.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.core.chat.messages import Role
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings, Settings
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with

LOAD_TIMEOUT_MS = 60_000
REPLY_TIMEOUT_MS = 60_000


def _settings(max_tokens: int = 8) -> Settings:
    return Settings(
        load=LoadSettings(n_ctx=512, n_threads=1),
        sampling=SamplingSettings(seed=3, max_tokens=max_tokens, temperature=1.0),
    )


@pytest.fixture
def home(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "home").ensure()


@pytest.fixture
def open_window(qtbot, home: AppPaths, tiny_scout: Path) -> Iterator[Callable[..., MainWindow]]:
    """Open a window on ``home`` with the tiny Scout loaded (call again to 'restart')."""
    windows: list[MainWindow] = []

    def make(*, load: bool = True, max_tokens: int = 8) -> MainWindow:
        window = MainWindow(home, _settings(max_tokens))
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        if load:
            with qtbot.waitSignal(window.bridge.loaded, timeout=LOAD_TIMEOUT_MS):
                load_with(window, tiny_scout, n_ctx=512)
        return window

    yield make
    for window in windows:
        window.close()


def _send(qtbot, window: MainWindow, text: str) -> None:
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=REPLY_TIMEOUT_MS):
        qtbot.keyClicks(window.composer.editor, text)
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)


def _texts(window: MainWindow) -> list[tuple[Role, str]]:
    return [(b.role, b.text) for b in window.chat_view.bubbles]


def _stored(home: AppPaths) -> list[tuple[str, str, str]]:
    with sqlite3.connect(home.chats_db) as db:
        return db.execute("SELECT role, content, state FROM messages ORDER BY id").fetchall()


def test_messages_are_saved_and_a_restart_restores_everything(open_window, home, qtbot):
    window = open_window()
    _send(qtbot, window, "What is a llama?")
    _send(qtbot, window, "And an alpaca?")
    shown = _texts(window)
    assert [role for role, _ in shown] == [Role.USER, Role.ASSISTANT] * 2
    stored = _stored(home)
    assert [(r, c) for r, c, _ in stored] == [(role.value, text) for role, text in shown]
    assert {state for _, _, state in stored} == {"complete"}
    assert window.sidebar.item(window.sidebar.ids[0]).text() == "What is a llama?"
    window.resize(window.width(), 650)  # offscreen screen: 800x800
    window.close()

    again = open_window(load=False)
    assert _texts(again) == shown  # the open conversation is back, in order
    assert again.sidebar.ids == [again.conversations.session.conversation_id]
    assert again.height() == 650
    assert "tok/s" in again.chat_view.bubbles[1].footer  # stats were saved too


def test_new_chats_sort_by_activity_and_search_finds_content(open_window, qtbot):
    window = open_window()
    _send(qtbot, window, "Tell me about bananas")
    first = window.conversations.session.conversation_id
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.chat_view.bubbles == []
    _send(qtbot, window, "Tell me about mangoes")
    second = window.conversations.session.conversation_id
    assert window.sidebar.ids == [second, first]

    window.sidebar.select(first)  # back to the first chat
    assert _texts(window)[0] == (Role.USER, "Tell me about bananas")
    _send(qtbot, window, "More please")
    assert window.sidebar.ids == [first, second]  # newest activity first

    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert window.sidebar.search.hasFocus()
    with qtbot.waitSignal(window.sidebar.search_changed, timeout=2_000):
        qtbot.keyClicks(window.sidebar.search, "MANGO")
    assert window.sidebar.ids == [second]  # matched in a message, any case
    window.sidebar.search.clear()
    qtbot.waitUntil(lambda: len(window.sidebar.ids) == 2, timeout=2_000)


def test_regenerate_replaces_the_last_reply_and_undo_brings_it_back(open_window, home, qtbot):
    window = open_window()
    _send(qtbot, window, "Pick a number")
    before = _texts(window)
    window.apply_settings(
        Settings(load=window.settings.load, sampling=SamplingSettings(seed=99, max_tokens=8))
    )
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=REPLY_TIMEOUT_MS):
        window.chat_view.regenerate_requested.emit()
    qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)
    after = _texts(window)
    assert len(after) == 2 and after[0] == before[0]
    assert [(r, c) for r, c, _ in _stored(home)] == [(r.value, t) for r, t in after]
    assert window.undo_banner.isVisible()

    qtbot.mouseClick(window.undo_banner.undo_button, Qt.MouseButton.LeftButton)
    assert _texts(window) == before
    assert [(r, c) for r, c, _ in _stored(home)] == [(r.value, t) for r, t in before]
    assert window.undo_banner.isHidden()


def test_edit_and_resend_replaces_later_messages_with_undo(open_window, qtbot):
    window = open_window()
    _send(qtbot, window, "first")
    _send(qtbot, window, "second")
    before = _texts(window)
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=REPLY_TIMEOUT_MS):
        window.chat_view.edit_requested.emit(0, "first, edited")
    qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)
    after = _texts(window)
    assert [role for role, _ in after] == [Role.USER, Role.ASSISTANT]
    assert after[0] == (Role.USER, "first, edited")
    assert [m.content for m in window.history][0] == "first, edited"

    window.conversations.undo()
    assert _texts(window) == before


def test_delete_and_undo(open_window, qtbot):
    window = open_window()
    _send(qtbot, window, "keep this chat")
    conversation_id = window.conversations.session.conversation_id
    shown = _texts(window)
    window.sidebar.delete_requested.emit(conversation_id)
    assert window.sidebar.ids == []
    assert window.chat_view.bubbles == []
    assert "keep this chat" in window.undo_banner.message_label.text()
    qtbot.mouseClick(window.undo_banner.undo_button, Qt.MouseButton.LeftButton)
    assert window.sidebar.ids == [conversation_id]
    assert _texts(window) == shown


def test_export_markdown_and_json(open_window, qtbot, tmp_path):
    window = open_window()
    _send(qtbot, window, "Export me")
    conversation_id = window.conversations.session.conversation_id
    md = window.conversations.export(conversation_id, "md", tmp_path / "chat.md")
    js = window.conversations.export(conversation_id, "json", tmp_path / "chat.json")
    text = md.read_text(encoding="utf-8")
    assert "Export me" in text and text.startswith("# Export me")
    data = json.loads(js.read_text(encoding="utf-8"))
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    assert data["messages"][1]["content"] == window.chat_view.bubbles[1].text


def test_sending_before_a_model_is_loaded_saves_nothing(open_window, home, qtbot):
    window = open_window(load=False)
    qtbot.keyClicks(window.composer.editor, "hello?")
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    assert window.chat_view.bubbles == []
    assert _stored(home) == []
    assert window.composer.text == "hello?"  # the draft is kept


def test_switching_chats_mid_reply_stops_it_and_keeps_what_was_written(
    qtbot, home, tiny_llama4_says_model: Path
):
    quiet = dataclasses.replace(_settings(max_tokens=100), default_preset_id="none")
    window = MainWindow(home, quiet)  # this tiny vocabulary spells a system prompt long
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(window.bridge.loaded, timeout=LOAD_TIMEOUT_MS):
            load_with(window, tiny_llama4_says_model, n_ctx=512)
        _send(qtbot, window, "first chat")
        first = window.conversations.session.conversation_id
        window.conversations.new_chat()
        window.apply_settings(dataclasses.replace(quiet, sampling=_settings(5000).sampling))
        with qtbot.waitSignal(window.bridge.token_batch, timeout=REPLY_TIMEOUT_MS):
            window.send_message("second chat, a long answer please")
        second = window.conversations.session.conversation_id
        window.conversations.open(first)  # mid-reply
        assert not window.conversations.streaming
        assert [b.text for b in window.chat_view.bubbles][0] == "first chat"
        qtbot.waitUntil(lambda: not window.bridge.busy, timeout=10_000)
        assert len(window.chat_view.bubbles) == 2  # the old reply's tail went nowhere
        reply = window.store.messages(second)[-1]
        assert reply.state.value == "incomplete" and reply.content.strip()
        window.conversations.open(second)
        assert "incomplete" in window.chat_view.bubbles[-1].footer
    finally:
        window.close()
