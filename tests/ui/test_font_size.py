"""The font size setting reaches every part of the window, styled widgets included."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication

from app.core.chat.messages import Role
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.ui.chat.chat_view import ShownMessage
from app.ui.main_window import MainWindow
from app.ui.theme import apply_appearance


def test_a_bigger_font_reaches_the_sidebar_transcript_code_and_model_bar(qtbot, tmp_path: Path):
    app = QApplication.instance()
    font, palette = app.font(), app.palette()
    window = MainWindow(AppPaths.under(tmp_path).ensure(), Settings())
    qtbot.addWidget(window)
    window.show()
    try:
        window.chat_view.load_messages(
            [ShownMessage(Role.ASSISTANT, "Some text.\n\n```python\nprint(1)\n```")]
        )
        before = {
            "sidebar": window.sidebar.list.font().pointSizeF(),
            "model": window.model_bar.name_label.font().pointSizeF(),
            "status": window.model_status.font().pointSizeF(),
            "view": window.chat_view.font().pointSizeF(),
        }
        size = round(max(before.values())) + 6
        apply_appearance(app, "light", size)
        qtbot.wait(50)
        after = {
            "sidebar": window.sidebar.list.font().pointSizeF(),
            "model": window.model_bar.name_label.font().pointSizeF(),
            "status": window.model_status.font().pointSizeF(),
            "view": window.chat_view.font().pointSizeF(),
        }
        assert after == dict.fromkeys(before, float(size))
        assert window.model_bar.name_label.font().bold()  # bold kept, size followed
    finally:
        window.close()
        app.setFont(font)
        app.setPalette(palette)


def test_switching_to_dark_live_recolours_the_styled_transcript(qtbot, tmp_path: Path):
    from PySide6.QtGui import QPalette

    app = QApplication.instance()
    font, palette = app.font(), app.palette()
    window = MainWindow(AppPaths.under(tmp_path).ensure(), Settings())
    qtbot.addWidget(window)
    window.show()
    try:
        apply_appearance(app, "light", 0)
        window.chat_view.load_messages([ShownMessage(Role.ASSISTANT, "Hello.")])
        qtbot.wait(50)
        light = window.chat_view.grab().toImage().pixelColor(5, 5).lightness()
        apply_appearance(app, "dark", 0)
        qtbot.wait(50)
        dark = window.chat_view.grab().toImage().pixelColor(5, 5).lightness()
        sidebar = window.sidebar.list.palette().color(QPalette.ColorRole.Text).lightness()
        assert light > 200 and dark < 80  # the transcript's background followed
        assert sidebar > 150  # light text on the dark sidebar
    finally:
        window.close()
        app.setFont(font)
        app.setPalette(palette)
