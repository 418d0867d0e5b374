"""The Model Manager, offscreen, against the local Hub server (real huggingface_hub)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressBar

from app.core.hardware.probe import Backend, Device, Hardware
from app.core.hub import library
from app.core.hub.jobs import DownloadQueue, JobState
from app.core.hub.service import HubService
from app.core.paths import AppPaths
from app.ui.models.model_manager import ModelManagerDialog
from app.ui.models.quant_table import CHECKING, CONTEXT, FIT, PICK, QUANT, SIZE
from tests.hub.hub_repos import gated_repo, scout_repo, showcase_repo
from tests.hub.hub_server import TOKEN, FakeHub

SCOUT = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF"
GATED = "herd-test/Gated-Llama-4-GGUF"
GiB = 1 << 30
HW = Hardware(
    (Device("CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 4090", 24 * GiB, 24 * GiB),),
    64 * GiB,
    64 * GiB,
    16,
)
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def hub_module() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        hub.add(scout_repo())
        hub.add(gated_repo())
        yield hub


@pytest.fixture
def hub(hub_module: FakeHub) -> FakeHub:
    hub_module.reset()
    return hub_module


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "herd").ensure()


@pytest.fixture
def dialog(qtbot, hub, paths) -> Iterator[ModelManagerDialog]:
    service = HubService(paths, endpoint=hub.endpoint, token=False)  # never a real token
    dlg = ModelManagerDialog(paths, None, service=service, hardware=HW)
    qtbot.addWidget(dlg)
    dlg.confirm = lambda title, text: True
    dlg.ask_token = lambda repo: None
    dlg.show()
    yield dlg
    dlg.close()


def _open_repo(qtbot, dlg: ModelManagerDialog, query: str, repo_id: str) -> None:
    dlg.search_edit.setText(query)
    with qtbot.waitSignal(dlg.bridge.search_ready, timeout=TIMEOUT_MS):
        dlg._on_search_requested()
    items = [dlg.repo_list.item(i) for i in range(dlg.repo_list.count())]
    target = next(i for i in items if i.data(Qt.ItemDataRole.UserRole) == repo_id)
    with qtbot.waitSignal(dlg.bridge.quants_ready, timeout=TIMEOUT_MS):
        dlg.repo_list.setCurrentItem(target)


def _column(table, column: int) -> list[str]:
    return [table.item(r, column).text() for r in range(table.rowCount())]


def _download_selected(qtbot, dlg: ModelManagerDialog, signal, row: int | None = None) -> None:
    if row is not None:
        dlg.quant_table.selectRow(row)
    with qtbot.waitSignal(signal, timeout=TIMEOUT_MS) as blocker:
        dlg.download_button.click()
    return blocker.args


def test_catalog_shows_quants_with_verdicts_and_the_recommended_one(qtbot, dialog):
    assert dialog.repo_list.count() >= 7  # the curated repositories
    _open_repo(qtbot, dialog, "scout", SCOUT)
    table = dialog.quant_table
    assert table.rowCount() == 2
    assert [table.item(r, QUANT).text() for r in range(2)] == ["Q4_K_M", "Q8_0"]
    assert table.item(0, SIZE).toolTip().startswith("2 files")
    assert table.item(0, FIT).text().startswith("fits on GPU, ~")
    assert "recommended" in table.item(1, PICK).text() and table.item(1, QUANT).font().bold()
    assert table.item(0, PICK).text() == ""
    assert "mmproj-F16.gguf" in dialog.projector_label.text()
    assert dialog.download_button.isEnabled() and "Q8_0" in dialog.download_button.text()


def test_download_then_load_from_the_library(qtbot, dialog, hub, paths):
    _open_repo(qtbot, dialog, "scout", SCOUT)
    key, path = _download_selected(qtbot, dialog, dialog.bridge.download_finished, row=0)
    assert path.endswith("Q4_K_M-00001-of-00002.gguf")
    row = dialog._row_of(key)
    bar = dialog.downloads_table.cellWidget(row, 1)
    assert isinstance(bar, QProgressBar) and bar.value() == 1000
    assert dialog.library_table.rowCount() == 1
    assert "(2 parts)" in dialog.library_table.item(0, 0).text()
    dialog.tabs.setCurrentIndex(2)
    dialog.library_table.selectRow(0)
    with qtbot.waitSignal(dialog.model_chosen, timeout=TIMEOUT_MS) as chosen:
        dialog._on_load_clicked()
    assert chosen.args == [path]
    assert library.list_models(paths)[0].last_used is not None
    dialog.library_table.selectRow(0)
    dialog._on_delete_clicked()
    assert dialog.library_table.rowCount() == 0


def test_corrupted_download_is_reported_and_not_offered(qtbot, dialog, hub, paths):
    _open_repo(qtbot, dialog, "scout", SCOUT)
    hub.faults.corrupt_at["Llama-4-Scout-17B-16E-Instruct-Q8_0.gguf"] = 1234
    key, state, message, hint, needs_token = _download_selected(
        qtbot, dialog, dialog.bridge.download_stopped, row=1
    )
    assert state == "failed" and "damaged" in message and not needs_token
    assert "damaged" in dialog.status.text()
    assert "damaged" in dialog.downloads_table.item(dialog._row_of(key), 2).text()
    assert dialog.library_table.rowCount() == 0


def test_gated_repo_asks_for_a_token_and_then_downloads(qtbot, dialog, hub, paths):
    asked = []
    dialog.ask_token = lambda repo: asked.append(repo) or TOKEN
    dialog.service.token = None  # from now on: the token store
    _open_repo(qtbot, dialog, "gated", GATED)
    with qtbot.waitSignal(dialog.bridge.download_finished, timeout=TIMEOUT_MS):
        dialog.download_button.click()
    assert asked == [GATED]
    assert dialog.service.tokens.get() == TOKEN
    assert dialog.library_table.rowCount() == 1


def test_cancel_mid_file_removes_the_partial_data(qtbot, dialog, hub, paths):
    import threading

    hub.faults.stall = threading.Event()
    hub.faults.stall.set()  # the body stops after its first block
    _open_repo(qtbot, dialog, "scout", SCOUT)
    dialog.quant_table.selectRow(1)
    with qtbot.waitSignal(dialog.bridge.download_progress, timeout=TIMEOUT_MS):
        dialog.download_button.click()
    dialog.downloads_table.selectRow(0)
    hub.faults.stall.clear()
    with qtbot.waitSignal(dialog.bridge.download_stopped, timeout=TIMEOUT_MS) as stopped:
        dialog._on_cancel_clicked()
    assert stopped.args[1] in {"cancelled"}
    assert dialog.downloads_table.rowCount() == 0
    assert not list(paths.downloads.glob("*.part"))


def test_closing_mid_download_resumes_next_time(qtbot, hub, paths):
    import threading

    service = HubService(paths, endpoint=hub.endpoint, token=False)
    hub.faults.stall = threading.Event()
    hub.faults.stall.set()
    first = ModelManagerDialog(paths, None, service=service, hardware=HW)
    qtbot.addWidget(first)
    _open_repo(qtbot, first, "scout", SCOUT)
    first.quant_table.selectRow(1)
    with qtbot.waitSignal(first.bridge.download_progress, timeout=TIMEOUT_MS):
        first.download_button.click()
    hub.faults.stall.clear()
    first.close()  # pauses, joins its threads, leaves the partial file
    entry = DownloadQueue.load(paths.downloads).entries[0]
    assert entry.state is JobState.QUEUED
    assert list(paths.downloads.glob("*.part"))

    again = ModelManagerDialog(paths, None, service=service, hardware=HW)
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.bridge.download_finished, timeout=TIMEOUT_MS):
        pass  # it resumes by itself
    ranges = [r for n, r in hub.ranges if n.endswith("Q8_0.gguf")]
    assert ranges[-1].startswith("bytes=")
    again.close()


def test_screenshot(qtbot, dialog, hub, paths, tmp_path, model_cache_dir):
    """Renders offscreen; set HERD_SCREENSHOTS=folder to keep the PNG."""
    from tests.fixtures import real_layouts

    real = None
    if real_layouts.sparse_files_work(model_cache_dir):
        real = real_layouts.ensure_header_only(real_layouts.SCOUT_Q4_K_M, model_cache_dir)
    repo = hub.add(showcase_repo(real_q4=real))
    item = next(
        dialog.repo_list.item(i)
        for i in range(dialog.repo_list.count())
        if dialog.repo_list.item(i).data(Qt.ItemDataRole.UserRole) == repo.repo_id
    )
    with qtbot.waitSignal(dialog.bridge.quants_ready, timeout=TIMEOUT_MS):
        dialog.repo_list.setCurrentItem(item)
    table = dialog.quant_table
    q4 = _column(table, QUANT).index("Q4_K_M")
    qtbot.waitUntil(lambda: CHECKING not in _column(table, CONTEXT), timeout=TIMEOUT_MS)
    if real is not None:
        assert table.item(q4, CONTEXT).text().endswith(" tokens")
    texts = _column(table, FIT)
    assert any("experts in RAM" in t for t in texts)
    assert any("does not fit" in t for t in texts)
    picks = _column(table, PICK)
    assert sum("recommended" in t for t in picks) == 1
    dialog.resize(1100, 640)
    out = Path(os.environ.get("HERD_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    assert dialog.grab().save(str(out / "model_manager.png"))


def test_pause_and_resume_buttons(qtbot, dialog, hub, paths):
    import threading

    hub.faults.stall = threading.Event()
    hub.faults.stall.set()
    _open_repo(qtbot, dialog, "scout", SCOUT)
    dialog.quant_table.selectRow(1)
    with qtbot.waitSignal(dialog.bridge.download_progress, timeout=TIMEOUT_MS):
        dialog.download_button.click()
    dialog.downloads_table.selectRow(0)
    with qtbot.waitSignal(dialog.bridge.download_stopped, timeout=TIMEOUT_MS) as stopped:
        dialog._on_pause_clicked()
        hub.faults.stall.clear()
    assert stopped.args[1] == "paused"
    assert dialog.downloads_table.item(0, 2).text().startswith("Paused")
    assert list(paths.downloads.glob("*.part"))
    dialog.downloads_table.selectRow(0)
    with qtbot.waitSignal(dialog.bridge.download_finished, timeout=TIMEOUT_MS):
        dialog._on_resume_clicked()
    assert dialog.library_table.rowCount() == 1


def test_selected_quant_gets_the_planners_verdict(qtbot, dialog, hub, model_cache_dir):
    from tests.fixtures import real_layouts
    from tests.hub.hub_server import HubFile, HubRepo

    if not real_layouts.sparse_files_work(model_cache_dir):
        pytest.skip("this file system does not keep sparse files")
    header_only = real_layouts.ensure_header_only(real_layouts.SCOUT_Q4_K_M, model_cache_dir)
    name = "Llama-4-Scout-17B-16E-Instruct-Q4_K_M.gguf"
    repo = hub.add(
        HubRepo(
            "herd-test/Real-Layout-GGUF", {name: HubFile(name, path=header_only, sha256="ab" * 32)}
        )
    )
    dialog.search_edit.setText("real-layout")
    with qtbot.waitSignal(dialog.bridge.search_ready, timeout=TIMEOUT_MS):
        dialog._on_search_requested()
    with qtbot.waitSignal(dialog.bridge.quant_planned, timeout=TIMEOUT_MS) as planned:
        dialog.repo_list.setCurrentRow(0)
    assert planned.args[0] == repo.repo_id and planned.args[2].planned
    cell = dialog.quant_table.item(0, FIT)
    assert cell.text().startswith("experts in RAM, ~")
    assert "planner" in cell.toolTip()
    assert dialog.quant_table.item(0, CONTEXT).text() == "32,768 tokens"
