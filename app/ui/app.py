"""run_app: the QApplication, the window, the engine; and a tidy exit."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.chat.session import open_history
from app.core.chat.store import ChatStore
from app.core.chat.store_schema import StoreBusyError, StoreError, StoreVersionError
from app.core.demo import demo_model_path
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.ui.main_window import MainWindow
from app.ui.theme import apply_appearance

logger = logging.getLogger(__name__)

STYLESHEET = Path(__file__).resolve().parents[2] / "assets" / "style.qss"


def choose_model(model: Path | None, settings: Settings) -> Path | None:
    """The model to open: the one asked for, else the last one, else the demo model."""
    if model is not None:
        return model
    if settings.last_model and Path(settings.last_model).is_file():
        return Path(settings.last_model)
    return demo_model_path()


def _ask(error: StoreError, *, can_retry: bool) -> bool:
    """Show a chat-history problem before the window exists; True: try again."""
    buttons = QMessageBox.StandardButton
    box = QMessageBox(
        QMessageBox.Icon.Warning if can_retry else QMessageBox.Icon.Critical,
        "Herd",
        error.user_message,
        (buttons.Retry | buttons.Close) if can_retry else buttons.Close,
    )
    box.setInformativeText(error.hint)
    return box.exec() == buttons.Retry


def open_history_or_ask(
    paths: AppPaths, ask: Callable[..., bool] = _ask
) -> tuple[ChatStore, str] | None:
    """The chat history for the window, or None when Herd must not start on it.

    A history from a newer Herd is never replaced by a new one: the person is told and
    Herd closes. A history another program keeps locked is waited for (a few seconds),
    then the person chooses to try again or close. Neither file is ever renamed.
    """
    while True:
        try:
            return open_history(paths.chats_db)
        except StoreVersionError as exc:
            ask(exc, can_retry=False)
            return None
        except StoreBusyError as exc:
            if not ask(exc, can_retry=True):
                return None


ICON = Path(__file__).resolve().parents[2] / "assets" / "herd.svg"


def app_icon() -> QIcon:
    """Herd's icon (``assets/herd.svg``); an empty icon if the file is missing."""
    return QIcon(str(ICON)) if ICON.is_file() else QIcon()


def run_app(paths: AppPaths, settings: Settings, model: Path | None) -> int:
    """Open the chat window and run until it closes; returns the exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Herd")
    app.setWindowIcon(app_icon())
    app.setApplicationDisplayName("Herd")
    app.setDesktopFileName("herd")
    if STYLESHEET.is_file():
        app.setStyleSheet(STYLESHEET.read_text(encoding="utf-8"))
    apply_appearance(app, settings.theme, settings.font_size)

    history = open_history_or_ask(paths)
    if history is None:
        return 1
    window = MainWindow(paths, settings, history=history)
    window.bridge.start()
    target = choose_model(model, settings)
    if target is not None:
        window.load_model(target)
    else:
        logger.info("no model to open at start (no last model, demo package not installed)")
    window.show()
    started = psutil.Process().create_time()  # the click: cold-start figures of the bundles
    ready = lambda: logger.info("window ready %.2f s after start", time.time() - started)  # noqa: E731
    QTimer.singleShot(0, ready)

    # Qt's loop does not run Python signal handlers; a timer gives them a chance, so
    # Ctrl+C in the terminal closes the window properly instead of being ignored.
    previous = signal.signal(signal.SIGINT, lambda *_: window.close())
    ticker = QTimer()
    ticker.timeout.connect(lambda: None)
    ticker.start(250)
    try:
        code = app.exec()
    finally:
        ticker.stop()
        signal.signal(signal.SIGINT, previous)
        window.shutdown()
        try:
            window.settings.save_to(paths.config / "settings.json")
        except OSError as exc:
            logger.warning("could not save settings: %s", exc)
    return int(code)
