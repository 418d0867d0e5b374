"""UI test set-up: offscreen Qt, and no test may leave threads, processes or windows behind."""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest

# Before any QApplication exists (pytest-qt makes it lazily, in the qapp fixture).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

LEAK_GRACE_S = 3.0


def _live_children(known: set[int]) -> list[psutil.Process]:
    alive = []
    for child in psutil.Process().children(recursive=True):
        if child.pid in known:
            continue
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                child.info = {"name": child.name()}
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def _visible_windows() -> list[str]:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return []
    return [
        f"{type(w).__name__}({w.windowTitle()!r})"
        for w in QApplication.topLevelWidgets()
        if w.isVisible()
    ]


@pytest.fixture(autouse=True)
def no_leftovers():
    """Fail a test that leaves extra threads, live child processes or open windows."""
    threads_before = set(threading.enumerate())
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    deadline = time.monotonic() + LEAK_GRACE_S
    while True:
        threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        children = _live_children(children_before)
        if not threads and not children:
            break
        if time.monotonic() > deadline:
            described = [(c.pid, c.info["name"]) for c in children]
            for child in children:  # do not let one leak spoil every later test
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
            pytest.fail(
                f"test left behind threads {[t.name for t in threads]} and processes {described}"
            )
        time.sleep(0.05)
    windows = _visible_windows()
    if windows:
        pytest.fail(f"test left windows open: {windows}")


def load_with(window, model, **wishes) -> None:  # noqa: ANN001 - a MainWindow and a Path
    """Load ``model`` in ``window`` with these wishes kept for it (as the dialog would)."""
    from app.core.model_wishes import ModelWishes

    window.models.wishes.set(model, ModelWishes(**wishes))
    window.load_model(model)
