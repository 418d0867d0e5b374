"""Picking models in the window: the Load menu's library, a dropped .gguf, the Model Manager."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.core.paths import AppPaths
from app.core.settings import LoadSettings, Settings
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with


@pytest.fixture
def home(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "home").ensure()


@pytest.fixture
def window(qtbot, home: AppPaths):
    window = MainWindow(home, Settings(load=LoadSettings(n_ctx=512, n_threads=1)))
    qtbot.addWidget(window)
    window.show()
    yield window
    window.close()


def _drop(window: MainWindow, *files: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f)) for f in files])
    event = QDropEvent(
        QPointF(200, 200),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)


def test_a_dropped_gguf_loads_and_joins_the_load_menu(
    window: MainWindow, qtbot, tmp_path: Path, tiny_scout: Path
) -> None:
    assert window.model_bar.library == []
    mine = tmp_path / "my-models" / "scout-tiny.gguf"
    mine.parent.mkdir()
    shutil.copyfile(tiny_scout, mine)
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
        _drop(window, mine)
    assert window.model_bar.library == [str(mine.resolve())]
    labels = [a.text() for a in window.model_bar.library_menu.actions() if a.text()]
    assert labels[0].startswith("scout-tiny")
    assert "Open a model file…" in labels and "Download models…" in labels


def test_the_library_menu_loads_and_remembers_last_use(
    qtbot, home: AppPaths, tmp_path: Path, tiny_scout: Path, tiny_maverick: Path
) -> None:
    from app.core.hub import library

    for model in (tiny_scout, tiny_maverick):
        library.add_file(home, model)
    window = MainWindow(home, Settings(load=LoadSettings(n_ctx=512, n_threads=1)))
    qtbot.addWidget(window)
    window.show()
    try:
        assert len(window.model_bar.library) == 2
        maverick = next(
            a for a in window.model_bar.library_menu.actions() if "maverick" in a.text()
        )
        with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
            maverick.trigger()
        assert window.model_bar.library[0] == str(tiny_maverick.resolve())  # last used first
    finally:
        window.close()


def test_the_model_manager_hands_a_model_to_the_window(
    window: MainWindow, qtbot, tiny_scout: Path
) -> None:
    dialog = window.open_model_manager()
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
        dialog.model_chosen.emit(str(tiny_scout))
    dialog.close()
    assert window.model_bar.name_label.text() not in ("", "No model loaded")


def test_dropping_images_attaches_them_and_other_files_are_refused(
    window: MainWindow, qtbot, tmp_path: Path, tiny_vision_model: Path
) -> None:
    from PIL import Image

    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
        load_with(window, tiny_vision_model, n_ctx=512)
    photo = tmp_path / "cat.png"
    Image.new("RGB", (32, 32), "orange").save(photo)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    _drop(window, photo, notes)
    panel = window.composer.image_panel
    assert panel is not None and panel.wait_until_checked()  # checked off the GUI thread
    assert panel.images == (str(photo),)
    assert "notes.txt" in window.error_banner.message_label.text()
