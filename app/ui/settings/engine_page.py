"""EnginePage: Settings' "Engine" tab: how llama.cpp runs on this machine, and why.

Shows the engine self-check's record (the configuration in use, what was tried, what
crashed) and runs the check again on request, on a worker thread.
"""

from __future__ import annotations

import html
import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.engine import selfcheck
from app.core.engine.engine_config import CheckRecord, read_record
from app.core.paths import AppPaths


def record_html(record: CheckRecord | None) -> str:
    """The self-check's record as rich text for the page."""
    if record is None:
        return (
            "The engine has not been checked on this machine yet: it will be before the "
            "first model loads (about a second)."
        )
    if record.chosen is None:
        head = "<b>llama.cpp does not work on this machine.</b>"
    else:
        head = f"<b>Models load {html.escape(record.chosen.describe())}.</b>"
    rows = "".join(
        f"<li>{'pass' if a.ok else '<b>fail</b>'}: {html.escape(a.config.name)}, "
        f"{html.escape(a.outcome)} ({a.seconds:.2f} s)"
        + (f"<br><small>{html.escape(a.log_line)}</small>" if a.log_line else "")
        + "</li>"
        for a in record.attempts
    )
    devices = html.escape(", ".join(record.devices) or "none reported")
    return (
        f"{head}<br>{html.escape(record.cause)}<ul>{rows}</ul>"
        f"<small>llama.cpp's CPU features: {html.escape(record.system_info or '?')}<br>"
        f"Devices: {devices}</small>"
    )


class EnginePage(QWidget):
    """The self-check's verdict, with "Check again"."""

    checked = Signal(object)  # CheckRecord, after a check run from this page
    _done = Signal(object)  # CheckRecord, from the worker thread (queued)

    def __init__(self, paths: AppPaths, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._paths = paths
        self._thread: threading.Thread | None = None
        self.summary = QLabel(record_html(read_record(paths.state)), self)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.check_button = QPushButton("Check again", self)
        self.check_button.setToolTip(
            "Run the engine self-check now (a tiny model decoded in a separate process)"
        )
        self.check_button.clicked.connect(self._on_check_button_clicked)
        where = QLabel(
            f"Kept in {html.escape(str(Path(paths.state)))}; `herd doctor` shows the same.", self
        )
        where.setWordWrap(True)
        where.setStyleSheet("color: palette(placeholder-text);")
        row = QHBoxLayout()
        row.addWidget(where, 1)
        row.addWidget(self.check_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addStretch(1)
        layout.addLayout(row)
        self._done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)

    @Slot()
    def _on_check_button_clicked(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self.check_button.setEnabled(False)
        self.summary.setText("Checking how llama.cpp runs on this machine…")
        paths = self._paths

        def run() -> None:
            self._done.emit(selfcheck.ensure_checked(paths, force=True))

        self._thread = threading.Thread(target=run, name="herd-engine-check", daemon=True)
        self._thread.start()

    @Slot(object)
    def _on_done(self, record: CheckRecord) -> None:
        self.summary.setText(record_html(record))
        self.check_button.setEnabled(True)
        self.checked.emit(record)

    def join(self, timeout: float = 60.0) -> None:
        """Wait for a running check (the dialog joins its threads when it closes)."""
        if self._thread is not None:
            self._thread.join(timeout)
