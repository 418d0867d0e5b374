""" "Test this context…": the probe runs in the background, shows its heat map, is kept."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialogButtonBox

from app.core.gguf.info import read_gguf
from app.core.hardware.spec import profile
from app.core.load import LoadRequest
from app.core.model_wishes import ModelWishes
from app.core.paths import AppPaths
from app.core.plan.planner import Wishes
from app.core.probe.result import ProbeSpec
from app.core.probe.store import ProbeStore
from app.core.settings import LoadSettings
from app.ui.offload.offload_panel import OffloadDialog
from app.ui.offload.probe_dialog import ProbeDialog, ProbeSetup

TIMEOUT_MS = 120_000


def test_the_dialog_runs_the_probe_and_shows_its_heat_map(
    qtbot, tmp_path: Path, tiny_scout: Path
) -> None:
    setup = ProbeSetup(AppPaths.under(tmp_path).ensure(), LoadSettings())
    request = LoadRequest(tiny_scout, ModelWishes(n_ctx=512))
    spec = ProbeSpec(lengths=(300, 512), depths=(0.0, 1.0))
    dialog = ProbeDialog(setup, request, spec)
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(dialog.result_ready, timeout=TIMEOUT_MS) as got:
        pass
    result = got.args[0]
    assert result.complete and len(result.cells) == 4
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)
    assert not dialog.heatmap.pixmap().isNull()
    assert dialog.heatmap.pixmap().width() > 300
    assert "of 4 needles" in dialog.summary.text()
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Close) is not None
    [record] = ProbeStore.at(setup.paths).records(tiny_scout)
    assert record.n_ctx == 512
    dialog.grab().save(str(tmp_path / "dialog.png"))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Close).click()
    assert not dialog.isVisible()


def test_cancel_stops_the_probe(qtbot, tmp_path: Path, tiny_scout: Path) -> None:
    setup = ProbeSetup(AppPaths.under(tmp_path).ensure(), LoadSettings())
    request = LoadRequest(tiny_scout, ModelWishes(n_ctx=512))
    dialog = ProbeDialog(setup, request, ProbeSpec(lengths=(512,), trials=20))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: "of 220" in dialog.status.text(), timeout=TIMEOUT_MS)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)
    assert dialog.probe_result is not None and not dialog.probe_result.complete
    assert ProbeStore.at(setup.paths).records(tiny_scout) == []
    dialog.reject()


def test_the_offload_dialog_tests_its_context_and_says_the_result(
    qtbot, tmp_path: Path, tiny_scout: Path
) -> None:
    setup = ProbeSetup(AppPaths.under(tmp_path).ensure(), LoadSettings())
    info = read_gguf(tiny_scout)
    offload = OffloadDialog(info, profile("rtx4090-64gb"), Wishes(n_ctx=512), probe=setup)
    qtbot.addWidget(offload)
    offload.show()
    panel = offload.panel
    assert panel.probe_button.isVisible() and panel.probe_button.isEnabled()
    assert not panel.recall_label.isVisible()  # never probed
    request, spec = offload.probe.request()
    assert request.wishes.n_ctx == 512 and spec.lengths == (256, 512) and len(spec.depths) == 11
    offload.probe.depths = (0.0, 1.0)  # four cells keep the test short
    panel.probe_button.click()
    probe = offload.probe.dialog
    assert probe is not None
    try:
        with qtbot.waitSignal(probe.result_ready, timeout=TIMEOUT_MS):
            pass
        qtbot.waitUntil(lambda: not probe.running, timeout=TIMEOUT_MS)
        assert panel.recall_label.isVisible()
        assert panel.recall_label.text().startswith("Recall checked at 512: ")
    finally:
        probe.reject()
        offload.reject()


def test_no_button_without_a_probe_setup(qtbot, tiny_scout: Path) -> None:
    offload = OffloadDialog(read_gguf(tiny_scout), profile("rtx4090-64gb"), Wishes(n_ctx=512))
    qtbot.addWidget(offload)
    offload.show()
    assert not offload.panel.probe_button.isVisible()
    assert offload.probe is None
    offload.reject()
