"""The Model Manager's Downloads tab: the queue, each entry's progress, and its controls."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.hub.jobs import DownloadProgress, JobState
from app.core.units import size_text
from app.ui.models.hub_bridge import HubBridge
from app.ui.models.model_tables import REPO_ROLE, item_at, make_item, make_table, selected_row


def duration_text(seconds: float | None) -> str:
    """Time left as "1 h 05 min left", "3 min 07 s left", "9 s left" ("" when unknown)."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min left"
    return f"{s // 60} min {s % 60:02d} s left" if s >= 60 else f"{s} s left"


class DownloadsPage(QWidget):
    """The download queue as a table, with Pause, Resume, Cancel and Remove buttons.

    The rows follow ``bridge.queue``; ``confirm(title, text)`` is asked before a cancel
    deletes the partial file.
    """

    def __init__(
        self,
        bridge: HubBridge,
        confirm: Callable[[str, str], bool],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self._confirm = confirm
        self.table = make_table(["Model", "Progress", "Status"])
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setStretchLastSection(False)
        buttons = QHBoxLayout()
        for label, slot in (
            ("Pause", self.pause_selected),
            ("Resume", self.resume_selected),
            ("Cancel…", self.cancel_selected),
            ("Remove from list", self.forget_selected),
        ):
            button = QPushButton(label)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        bridge.download_progress.connect(self._on_bridge_progress)
        bridge.queue_changed.connect(self.refresh)
        self.refresh()

    def row_of(self, key: str) -> int | None:
        """The row showing the download ``key``, or None."""
        for row in range(self.table.rowCount()):
            if item_at(self.table, row, 0).data(REPO_ROLE) == key:
                return row
        return None

    def selected_key(self) -> str | None:
        """The key of the selected download, or None."""
        row = selected_row(self.table)
        return None if row is None else item_at(self.table, row, 0).data(REPO_ROLE)

    @Slot()
    def refresh(self) -> None:
        """Show the queue as it is now (progress bars are kept)."""
        entries = self.bridge.queue.entries
        self.table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            r = e.request
            self.table.setItem(row, 0, make_item(f"{r.title}\n{size_text(r.total)}", r.key))
            bar = self.table.cellWidget(row, 1)
            if not isinstance(bar, QProgressBar):
                bar = QProgressBar()
                bar.setRange(0, 1000)
                self.table.setCellWidget(row, 1, bar)
            if e.state is JobState.DONE:
                bar.setValue(1000)
            status = e.state.value.capitalize()
            if e.message and e.state is not JobState.DONE:
                status = f"{status}: {e.message}"
            self.table.setItem(row, 2, make_item(status))
        self.table.resizeRowsToContents()

    @Slot(object)
    def _on_bridge_progress(self, p: DownloadProgress) -> None:
        row = self.row_of(p.key)
        if row is None:
            return
        bar = self.table.cellWidget(row, 1)
        if isinstance(bar, QProgressBar):
            bar.setValue(int(p.fraction * 1000))
            bar.setFormat(f"{p.fraction * 100:.1f}%  {size_text(p.done)} of {size_text(p.total)}")
        speed = f"{p.speed_bps / 1e6:.1f} MB/s, " if p.speed_bps else ""
        name = p.filename.rsplit("/", 1)[-1]
        text = f"{p.phase.capitalize()} {name}\n{speed}{duration_text(p.eta_s)}"
        self.table.setItem(row, 2, make_item(text.strip()))

    @Slot()
    def pause_selected(self) -> None:
        """Pause the selected download (its partial file stays)."""
        if key := self.selected_key():
            self.bridge.pause(key)

    @Slot()
    def resume_selected(self) -> None:
        """Resume the selected download."""
        if key := self.selected_key():
            self.bridge.resume(key)

    @Slot()
    def cancel_selected(self) -> None:
        """Cancel the selected download after asking; its partial file is deleted."""
        key = self.selected_key()
        if key and self._confirm(
            "Cancel the download?", "The part downloaded so far will be deleted."
        ):
            self.bridge.cancel(key)

    @Slot()
    def forget_selected(self) -> None:
        """Remove the selected download from the list."""
        if key := self.selected_key():
            self.bridge.forget(key)
