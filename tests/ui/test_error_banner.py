"""The window shows errors in one place: message, hint, Copy and Open log."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from app.core.errors import HerdError
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.ui.main_window import MainWindow
from tests.fixtures.gguf_rewrite import rewrite_gguf


def test_a_failed_load_shows_llama_cpps_reason_and_its_log(
    qtbot, tmp_path: Path, tiny_scout: Path
) -> None:
    broken = rewrite_gguf(
        tiny_scout, tmp_path / "no-attn-q.gguf", drop_tensors={"blk.1.attn_q.weight"}
    )
    paths = AppPaths.under(tmp_path / "home").ensure()
    window = MainWindow(paths, Settings())
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(window.bridge.load_failed, timeout=60_000):
            window.load_model(broken)
        banner = window.error_banner
        assert banner.isVisible()
        assert "tensor 'blk.1.attn_q.weight' not found" in banner.message_label.text()
        assert banner.log_button.isVisible()
        banner.copy_button.click()
        copied = QGuiApplication.clipboard().text()
        assert f"Log: {paths.engine_log}" in copied and "not found" in copied
        banner.dismiss_button.click()
        assert not banner.isVisible()
        window.show_error(HerdError("The chat history could not be saved.", "Free some space."))
        assert banner.isVisible() and not banner.log_button.isVisible()
        assert banner.text == "The chat history could not be saved.\nFree some space."
    finally:
        window.close()


def test_crash_details_show_the_logs_end_with_copy_and_open_log(qtbot, tmp_path: Path) -> None:
    from app.core import events as ev
    from app.ui.banners import CrashBanner

    log = tmp_path / "engine.log"
    log.write_text("…\n")
    banner = CrashBanner()
    qtbot.addWidget(banner)
    banner.resize(900, 300)
    banner.show()
    tail = tuple(f"llama.cpp line {i}" for i in range(40)) + ("GGML_ASSERT(buf != NULL) failed",)
    crash = ev.EngineCrashed("The engine stopped: llama.cpp aborted (SIGABRT).", -6, tail)
    banner.show_crash(crash, str(log))
    assert banner.log_button.isVisible() and banner.copy_button.isVisible()
    qtbot.mouseClick(banner.details_button, Qt.MouseButton.LeftButton)
    bar = banner.log_view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=2000)
    last = banner.log_view.cursorForPosition(banner.log_view.viewport().rect().bottomLeft())
    assert "GGML_ASSERT" in last.block().text()  # the crash line is in sight, not line 0
    qtbot.mouseClick(banner.copy_button, Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert "SIGABRT" in copied and "GGML_ASSERT" in copied and str(log) in copied
