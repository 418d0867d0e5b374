"""The window's "Local server" switch: the window's own model over OpenAI's API, taking turns."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import openai
import pytest

from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings, Settings
from app.ui.main_window import MainWindow
from app.ui.settings.settings_dialog import SettingsDialog
from tests.ui.conftest import load_with

SERVER_THREAD = "herd-local-server"
HI = [{"role": "user", "content": "hi"}]
LONG = 300  # tokens: a reply that lasts while the other side asks (seconds here)


def _settings() -> Settings:
    return Settings(
        load=LoadSettings(n_ctx=512, n_threads=1),
        sampling=SamplingSettings(max_tokens=8, seed=5),
    )


@pytest.fixture
def open_window(qtbot, tmp_path: Path) -> Iterator[Callable[..., MainWindow]]:
    windows: list[MainWindow] = []

    def make(
        model: Path | None = None, settings: Settings | None = None, n_ctx: int = 512
    ) -> MainWindow:
        window = MainWindow(AppPaths.under(tmp_path / "home").ensure(), settings or _settings())
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        if model is not None:
            with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
                load_with(window, model, n_ctx=n_ctx)
        return window

    yield make
    for window in windows:
        window.close()


def _switch(qtbot, window: MainWindow, on: bool, **fields: object) -> SettingsDialog:
    """Flip the switch in the Settings dialog (with these page fields) and press Apply."""
    dialog = window.open_settings()
    page = dialog.server_page
    page.enabled_check.setChecked(on)
    if "host" in fields:
        page.host_edit.setText(str(fields["host"]))
    if "port" in fields:
        page.port_spin.setValue(int(str(fields["port"])))
    if "key" in fields:
        page.key_edit.setText(str(fields["key"]))
    dialog.buttons.button(dialog.buttons.StandardButton.Apply).click()
    return dialog


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == SERVER_THREAD]


def test_the_switch_serves_the_windows_model_and_off_joins_it(
    open_window, qtbot, tiny_scout: Path
) -> None:
    window = open_window(tiny_scout)
    assert window.server.label.isHidden()  # off by default
    dialog = _switch(qtbot, window, True, port=0)
    assert window.settings.server_enabled and window.settings.server_port == 0
    # port 0 picked a free port; the status bar shows the real one
    match = re.fullmatch(
        r'<a href="copy">Server on (http://127\.0\.0\.1:(\d+)/v1)</a>', window.server.label.text()
    )
    assert match is not None and window.server.label.isVisible()
    url, port = match[1], int(match[2])
    assert port != 0 and url == window.server.url
    assert f"On at {url} ({tiny_scout.stem})" in dialog.server_page.status_label.text()

    root = url.removesuffix("/v1")
    health = httpx.get(f"{root}/health", timeout=10).json()
    assert health["status"] == "ok" and health["model"] == tiny_scout.stem
    models = httpx.get(f"{url}/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [tiny_scout.stem]

    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
    answer = client.chat.completions.create(model="x", messages=HI, max_tokens=5, seed=1)  # type: ignore[arg-type]
    assert answer.model == tiny_scout.stem
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert 0 < answer.usage.completion_tokens <= 5  # type: ignore[union-attr]

    # click the label: the address is copied
    window.server.label.linkActivated.emit("copy")
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == url

    dialog.server_page.enabled_check.setChecked(False)
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert not window.server.running and window.server.label.isHidden()
    qtbot.waitUntil(lambda: not _server_threads(), timeout=5000)  # joined
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{root}/health", timeout=2)
    assert not window.settings.server_enabled


def test_without_a_model_it_answers_503_until_one_is_loaded(
    open_window, qtbot, tiny_scout: Path
) -> None:
    window = open_window(
        settings=dataclasses.replace(_settings(), server_enabled=True, server_port=0)
    )
    url = window.server.url  # on at start, as the settings say
    assert url and "no model loaded yet" in window.server.describe()
    answer = httpx.post(f"{url}/chat/completions", json={"messages": HI}, timeout=10)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "model_not_loaded"
    assert httpx.get(f"{url}/models", timeout=10).json()["data"] == []
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
        load_with(window, tiny_scout, n_ctx=512)
    answer = httpx.post(
        f"{url}/chat/completions", json={"messages": HI, "max_tokens": 3}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    with qtbot.waitSignal(window.bridge.unloaded, timeout=60_000):
        window.bridge.unload()
    answer = httpx.post(f"{url}/chat/completions", json={"messages": HI}, timeout=10)
    assert answer.status_code == 503


def test_beyond_this_computer_without_a_key_is_refused_with_a_reason(open_window, qtbot) -> None:
    window = open_window()
    dialog = _switch(qtbot, window, True, host="0.0.0.0", port=0)
    assert dialog.error_label.isVisible()
    assert "API key" in dialog.error_label.text() and "0.0.0.0" in dialog.error_label.text()
    assert dialog.server_page.problem_label.isVisible()
    assert not window.settings.server_enabled and not window.server.running  # not applied
    dialog.server_page.key_edit.setText("")
    dialog.server_page.new_key_button.click()  # a key makes it allowed
    assert dialog.server_page.key_edit.text().startswith("herd-")
    assert dialog.server_page.problem() == ""
    assert not dialog.server_page.problem_label.isVisible()
    key_edit = dialog.server_page.key_edit
    assert key_edit.echoMode() == key_edit.EchoMode.Password  # a secret: hidden
    dialog.server_page.show_key_button.click()
    assert key_edit.echoMode() == key_edit.EchoMode.Normal
    dialog.reject()
    # a hand-edited settings file gets the same rule, said in the error banner
    window.apply_settings(
        dataclasses.replace(window.settings, server_enabled=True, server_host="0.0.0.0")
    )
    assert not window.server.running and not _server_threads()
    shown = window.error_banner.message_label.text()
    assert "The local server was not started" in shown and "API key" in shown
    assert window.server.label.text() == '<a href="settings">Server off: see Settings</a>'


def test_a_busy_port_is_said_and_the_window_goes_on(open_window, qtbot) -> None:
    window = open_window()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        window.apply_settings(
            dataclasses.replace(window.settings, server_enabled=True, server_port=port)
        )
        assert not window.server.running
        assert f"cannot listen on 127.0.0.1:{port}" in window.server.describe()
    # another port: it starts
    window.apply_settings(dataclasses.replace(window.settings, server_port=0))
    assert window.server.running


def _stream(url: str, body: dict[str, object], marks: list[tuple[str, float]]) -> None:
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=120) as answer:
        assert answer.status_code == 200
        for line in answer.iter_lines():
            data = line.removeprefix("data: ")
            if data.startswith("{") and json.loads(data)["choices"][0]["delta"].get("content"):
                marks.append(("server", time.monotonic()))
    marks.append(("server done", time.monotonic()))


def test_server_requests_and_window_chats_take_turns(
    open_window, qtbot, tiny_llama4_says_model: Path
) -> None:
    # a model that never stops by itself: each reply is as long as max_tokens says
    sampling = SamplingSettings(max_tokens=LONG, temperature=0.0)
    settings = dataclasses.replace(_settings(), sampling=sampling, server_enabled=True)
    settings = dataclasses.replace(settings, server_port=0)
    window = open_window(tiny_llama4_says_model, settings, n_ctx=2048)  # two long replies
    url = window.server.url
    marks: list[tuple[str, float]] = []
    window.bridge.token_batch.connect(lambda _text: marks.append(("window", time.monotonic())))
    notices: list[str] = []
    window.bridge.notice.connect(notices.append)

    # 1. the server is replying: the window's chat waits, says so, then replies
    body = {"messages": HI, "max_tokens": LONG, "temperature": 0, "stream": True}
    request = threading.Thread(target=_stream, args=(url, body, marks))
    request.start()
    qtbot.waitUntil(lambda: any(who == "server" for who, _ in marks), timeout=60_000)
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=120_000):
        window.send_message("hello")
    request.join(60)
    assert any("Waiting for the local server" in n for n in notices)
    order = [who for who, _ in marks]
    assert order.index("window") > order.index("server done")  # never interleaved

    # 2. the window is replying: the server's request waits for it
    marks.clear()
    with qtbot.waitSignal(window.bridge.reply_finished, timeout=120_000):
        window.send_message("again")
        qtbot.waitUntil(lambda: bool(marks), timeout=60_000)
        health = httpx.get(f"{url.removesuffix('/v1')}/health", timeout=10).json()
        assert health["busy"] is True  # the window's reply holds the engine's turn
        body = {"messages": HI, "max_tokens": 5, "temperature": 0, "stream": True}
        request = threading.Thread(target=_stream, args=(url, body, marks))
        request.start()
    request.join(60)
    order = [who for who, _ in marks]
    assert order[-1] == "server done" and "server" in order
    assert max(i for i, who in enumerate(order) if who == "window") < order.index("server")
