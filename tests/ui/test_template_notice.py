"""The window shows a chat-template mismatch and lets the person choose the format."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from app.core.paths import AppPaths
from app.core.settings import LoadSettings, Settings, TemplateChoice
from app.ui.main_window import MainWindow
from tests.engine.test_template_warning import TRIMMING_TEMPLATE
from tests.fixtures.tiny_llama4 import make_tiny_llama4
from tests.ui.conftest import load_with


def test_template_notice_offers_the_other_format(qtbot, tmp_path: Path, tiny_scout: Path) -> None:
    model = make_tiny_llama4(tmp_path / "trimming.gguf", chat_template=TRIMMING_TEMPLATE)
    paths = AppPaths.under(tmp_path / "home").ensure()
    window = MainWindow(paths, Settings(load=LoadSettings(n_ctx=512, n_threads=2)))
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            load_with(window, model, n_ctx=512)
        notice = window.template_notice
        assert notice.isVisible()
        assert "at byte" in notice.message_label.text()
        assert notice.switch_button.text() == "Use the model's template"

        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            qtbot.mouseClick(notice.switch_button, Qt.MouseButton.LeftButton)
        assert window.settings.load.template is TemplateChoice.MODEL
        assert notice.isVisible()
        assert notice.switch_button.text() == "Use the official format"

        # a model whose template matches the official format shows no notice
        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            load_with(window, tiny_scout, n_ctx=512)
        assert notice.isHidden()
    finally:
        window.close()
