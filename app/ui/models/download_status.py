"""DownloadStatus: a status-bar line for downloads that go on after the Model Manager closes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QLabel, QWidget

from app.core.hub.jobs import DownloadProgress
from app.core.plan.words import size as fmt_size
from app.ui.models.hub_bridge import HubBridge


def eta_text(seconds: float | None) -> str:
    """Time left in words: "5 s", "12 min", "2 h 05 min"; "" when unknown."""
    if seconds is None or seconds < 0:
        return ""
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"


class DownloadStatus(QLabel):
    """Shows the running download's progress, speed and time left; hidden when idle."""

    model_downloaded = Signal(str)  # the file to load

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("downloadStatus")
        self.hide()

    def attach(self, hub: HubBridge) -> None:
        """Follow ``hub``'s downloads."""
        hub.download_progress.connect(self._on_hub_download_progress)
        hub.download_finished.connect(self._on_hub_download_finished)
        hub.download_stopped.connect(self._on_hub_download_stopped)

    @Slot(object)
    def _on_hub_download_progress(self, progress: DownloadProgress) -> None:
        parts = [f"{progress.fraction:.0%} of {fmt_size(progress.total)}"]
        if progress.phase == "downloading" and progress.speed_bps > 0:
            parts.append(f"{fmt_size(int(progress.speed_bps))}/s")
            left = eta_text(progress.eta_s)
            if left:
                parts.append(f"{left} left")
        elif progress.phase != "downloading":
            parts.append(progress.phase)
        self.setText(f"Downloading {progress.filename}  ·  " + "  ·  ".join(parts))
        self.setToolTip("Open Model > Download models… to pause or cancel")
        self.show()

    @Slot(str, str)
    def _on_hub_download_finished(self, _key: str, path: str) -> None:
        self.setText(f"{Path(path).name} is downloaded and verified: it is in the Load menu")
        self.show()
        self.model_downloaded.emit(path)

    @Slot(str, str, str, str, bool)
    def _on_hub_download_stopped(
        self, _key: str, state: str, message: str, _hint: str, _token: bool
    ) -> None:
        self.setText(message or f"Download {state}.")
        self.show()
