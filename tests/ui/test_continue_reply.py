"""Continue: the last reply goes on where it stopped, in the same message, in view and store.

Real window, real engine: a tiny Llama 4 that repeats one word and never stops (so every
reply stops at the length limit), and SmolLM2, whose own chat template is cut after the
reply. The prompt the engine is sent is recorded: the reply is left open (no end of turn).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from app.core import events as ev
from app.core.chat.llama4_format import EOT
from app.core.chat.messages import Role
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings, Settings
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with

TIMEOUT_MS = 60_000


def _open(qtbot, home: AppPaths, model: Path | None, n_ctx: int = 512) -> MainWindow:
    settings = Settings(
        load=LoadSettings(n_ctx=n_ctx, n_threads=1),
        sampling=SamplingSettings(temperature=0.0, max_tokens=3, seed=1),
        default_preset_id="none",
    )
    window = MainWindow(home, settings)
    qtbot.addWidget(window)
    window.show()
    if model is not None:
        with qtbot.waitSignal(window.bridge.loaded, timeout=TIMEOUT_MS):
            load_with(window, model, n_ctx=n_ctx)
    return window


def _record_prompts(window: MainWindow) -> list[str]:
    """The text of every chat prompt the engine is sent from now on."""
    client = window.bridge.client
    sent: list[str] = []
    generate = client._generate

    def recording(args: dict[str, Any], *rest: Any) -> Any:
        sent.append("".join(text for text, _ in args.get("segments", [])))
        return generate(args, *rest)

    client._generate = recording  # type: ignore[method-assign]
    return sent


def _wait_reply(qtbot, window: MainWindow, start) -> ev.Finished:  # noqa: ANN001
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=TIMEOUT_MS) as finished:
        start()
    qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)
    return finished.args[0]


def _stored(home: AppPaths) -> list[tuple[str, str, int, str]]:
    with sqlite3.connect(home.chats_db) as db:
        return db.execute(
            "SELECT role, content, generated_tokens, stop_reason FROM messages ORDER BY position"
        ).fetchall()


def test_continue_extends_the_same_reply_with_the_turn_left_open(
    qtbot, tmp_path: Path, tiny_llama4_says_model: Path
) -> None:
    home = AppPaths.under(tmp_path / "home").ensure()
    window = _open(qtbot, home, tiny_llama4_says_model)
    try:
        sent = _record_prompts(window)
        first = _wait_reply(qtbot, window, lambda: window.send_message("Tell me more"))
        assert first.stop_reason is ev.StopReason.MAX_TOKENS
        reply = window.chat_view.bubbles[-1]
        before = reply.text
        assert before.strip() and reply.continue_button.isVisible()
        assert reply.continue_button.isEnabled() and window.conversations.can_continue()

        more = _wait_reply(qtbot, window, reply.continue_button.click)
        assert more.generated_tokens == 3
        # the prompt ends with the reply as written, no <|eot|> and no new assistant header
        assert sent[-1].endswith("<|header_start|>assistant<|header_end|>\n\n" + before)
        assert sent[-1].count(EOT) == 1  # the question's only
        assert more.prompt_tokens > first.prompt_tokens
        bubbles = window.chat_view.bubbles
        assert [b.role for b in bubbles] == [Role.USER, Role.ASSISTANT]  # the same message
        assert bubbles[-1].text == before + more.text and len(bubbles[-1].text) > len(before)
        assert "6 tokens" in bubbles[-1].footer  # the whole reply's length
        assert _stored(home) == [
            ("user", "Tell me more", None, ""),
            ("assistant", before + more.text, 6, "max_tokens"),
        ]
        assert window.conversations.can_continue()  # and again, as often as wanted
    finally:
        window.close()
    again = _open(qtbot, home, None)  # after a restart: one reply, the whole text
    try:
        assert [b.text for b in again.chat_view.bubbles][-1] == before + more.text
        assert not again.conversations.can_continue()  # no model loaded
        assert not again.chat_view.bubbles[-1].continue_button.isVisible()
    finally:
        again.close()


def test_continue_is_offered_only_under_a_written_reply_when_idle(
    qtbot, tmp_path: Path, tiny_llama4_says_model: Path
) -> None:
    home = AppPaths.under(tmp_path / "home").ensure()
    window = _open(qtbot, home, tiny_llama4_says_model)
    try:
        assert not window.conversations.can_continue()  # an empty chat
        window.apply_settings(
            Settings(load=window.settings.load, sampling=SamplingSettings(max_tokens=5000))
        )
        with qtbot.waitSignal(window.bridge.token_batch, timeout=TIMEOUT_MS):
            window.send_message("Hello")
        assert not window.conversations.can_continue()  # while it is written
        assert not window.chat_view.bubbles[-1].continue_button.isVisible()
        with qtbot.waitSignal(window.bridge.reply_finished, timeout=TIMEOUT_MS):
            window.stop_reply()  # the person stopped it: Continue picks it up
        qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)
        assert window.conversations.can_continue()
        chat = window.menuBar().actions()[0].menu()
        chat.aboutToShow.emit()
        (action,) = [a for a in chat.actions() if a.text() == "C&ontinue reply"]
        assert action.isEnabled()
        with qtbot.waitSignal(window.bridge.token_batch, timeout=TIMEOUT_MS):
            action.trigger()  # the menu's Continue
        with qtbot.waitSignal(window.bridge.reply_finished, timeout=TIMEOUT_MS):
            window.stop_reply()
        qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)
        assert [m[0] for m in _stored(home)] == ["user", "assistant"]
        chat.aboutToShow.emit()
        window.bridge.unload()
        qtbot.waitUntil(lambda: window.bridge.facts is None, timeout=10_000)
        chat.aboutToShow.emit()
        assert not action.isEnabled()  # no model loaded
    finally:
        window.close()


def test_continue_with_a_models_own_template(qtbot, tmp_path: Path, smollm2_gguf: Path) -> None:
    home = AppPaths.under(tmp_path / "home").ensure()
    window = _open(qtbot, home, smollm2_gguf, n_ctx=1024)
    try:
        assert window.bridge.continue_problem == ""  # ChatML can be left open
        sent = _record_prompts(window)
        _wait_reply(qtbot, window, lambda: window.send_message("Write a poem about the sea."))
        before = window.chat_view.bubbles[-1].text
        more = _wait_reply(qtbot, window, window.conversations.continue_reply)
        assert sent[-1].endswith("<|im_start|>assistant\n" + before)
        assert not sent[-1].endswith("<|im_end|>\n")
        assert len(window.chat_view.bubbles) == 2
        assert window.chat_view.bubbles[-1].text == before + more.text
    finally:
        window.close()
