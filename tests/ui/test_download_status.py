"""The status-bar download line follows the hub bridge's downloads."""

from __future__ import annotations

from app.core.hub.jobs import DownloadProgress
from app.core.hub.service import HubService
from app.core.paths import AppPaths
from app.ui.models.download_status import DownloadStatus, eta_text
from app.ui.models.hub_bridge import HubBridge


def test_eta_text():
    assert eta_text(None) == ""
    assert eta_text(42) == "42 s"
    assert eta_text(12 * 60 + 5) == "12 min"
    assert eta_text(2 * 3600 + 5 * 60) == "2 h 05 min"


def test_progress_finish_and_stop(qtbot, tmp_path):
    hub = HubBridge(HubService(AppPaths.under(tmp_path).ensure()))
    status = DownloadStatus()
    qtbot.addWidget(status)
    status.attach(hub)
    assert status.isHidden()
    hub.download_progress.emit(
        DownloadProgress(
            "k",
            "Scout-Q4_K_M.gguf",
            3 * 2**30,
            60 * 2**30,
            3 * 2**30,
            60 * 2**30,
            50 * 2**20,
            19 * 60,
            "downloading",
        )  # fmt: skip
    )
    text = status.text()
    assert "Scout-Q4_K_M.gguf" in text and "5%" in text and "19 min left" in text
    assert not status.isHidden()
    with qtbot.waitSignal(status.model_downloaded) as done:
        hub.download_finished.emit("k", str(tmp_path / "Scout-Q4_K_M.gguf"))
    assert done.args == [str(tmp_path / "Scout-Q4_K_M.gguf")]
    assert "verified" in status.text()
    hub.download_stopped.emit("k", "paused", "Paused at 5%.", "", False)
    assert status.text() == "Paused at 5%."
    hub.shutdown()
