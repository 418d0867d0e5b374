"""The Quantize dialog on a real tiny F32 Llama 4: preview, a real run into the library, cancel.

llama.cpp's quantizer runs for real, in its child process; only the machine the preview
judges for is a recorded profile (an RTX 4090 cannot exist here).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from app.core.gguf.info import read_gguf
from app.core.hardware.spec import profile
from app.core.hub import library
from app.core.hub.service import HubService
from app.core.paths import AppPaths
from app.ui.models.hub_bridge import HubBridge
from app.ui.models.model_library import LibraryPage
from app.ui.models.quantize_dialog import QuantizeDialog
from quantize.job import QuantizeProgress
from quantize.predict import predict
from quantize.recipe import recipe_named
from tests.fixtures.tiny_llama4_f32 import make_tiny_llama4_f32

FIXTURES = Path(__file__).parents[1] / "fixtures"
TIMEOUT_MS = 60_000
RTX = profile("rtx4090-64gb")


@pytest.fixture(scope="module")
def tiny_f32(model_cache_dir: Path) -> Path:
    """The tiny Llama 4 Scout in F32 with 256-wide rows (cached between runs)."""
    digest = hashlib.sha256()
    for source in ("tiny_llama4.py", "tiny_llama4_f32.py", "llama4_official_template.jinja"):
        digest.update((FIXTURES / source).read_bytes())
    path = model_cache_dir / f"tiny-llama4-f32-{digest.hexdigest()[:16]}.gguf"
    if not path.exists():
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        make_tiny_llama4_f32(partial)
        os.replace(partial, path)
    return path


@pytest.fixture
def source(tiny_f32: Path, tmp_path: Path) -> Path:
    """The tiny model in a folder of its own, so the output lands beside it in tmp_path."""
    link = tmp_path / "Tiny-Scout-F32.gguf"
    link.symlink_to(tiny_f32)
    return link


@pytest.fixture
def dialog(qtbot, source: Path, tmp_path: Path) -> Iterator[QuantizeDialog]:
    dlg = QuantizeDialog(source, None, hardware=RTX, log_dir=tmp_path / "logs")
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    dlg.close()


def _wait_preview(qtbot, dlg: QuantizeDialog) -> None:
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=TIMEOUT_MS)


def _leftovers(folder: Path, out: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(out.name))


def _at_first_progress(dlg: QuantizeDialog, act: Callable[[], object]) -> None:
    """Do ``act`` as the run's first progress report arrives (the child still starts)."""

    def slot(_job: int, event: object) -> None:
        if isinstance(event, QuantizeProgress) and dlg.running:
            dlg.runs.delivered.disconnect(slot)
            act()

    dlg.runs.delivered.connect(slot)


def test_preview_is_the_recipes_prediction_and_the_planners_verdict(qtbot, dialog, source):
    dialog.set_recipe("scout-24gb-gpu")
    _wait_preview(qtbot, dialog)
    recipe = recipe_named("scout-24gb-gpu")
    expected = predict(read_gguf(source), recipe)
    assert dialog.preview is not None
    assert dialog.preview.file_bytes == expected.file_bytes
    assert dialog.output == source.with_name("Tiny-Scout-scout-24gb-gpu.gguf")
    text = dialog.preview_label.text()
    assert "Predicted size" in text
    assert "RTX 4090" in text  # judged for the machine given, not the recipe's
    assert "fits at" in text and "experts all on the GPU" in text
    assert dialog.quantize_button.isEnabled()

    dialog.set_recipe("scout-mac-64gb")  # Q2_K experts: a smaller file
    qtbot.waitUntil(
        lambda: (
            dialog.preview is not None
            and dialog.preview.plan.request.recipe.name == "scout-mac-64gb"
        ),
        timeout=TIMEOUT_MS,
    )
    assert dialog.preview.file_bytes < expected.file_bytes
    assert dialog.output == source.with_name("Tiny-Scout-scout-mac-64gb.gguf")


def test_a_source_that_is_not_a_gguf_says_so(qtbot, tmp_path):
    bogus = tmp_path / "notes-F16.gguf"
    bogus.write_text("not a model")
    dlg = QuantizeDialog(bogus, None, hardware=RTX, log_dir=tmp_path / "logs")
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: "No preview" in dlg.preview_label.text(), timeout=TIMEOUT_MS)
    assert not dlg.quantize_button.isEnabled()
    dlg.close()


def test_an_already_quantized_source_is_refused_before_running(qtbot, tiny_scout, tmp_path):
    dlg = QuantizeDialog(tiny_scout, None, hardware=RTX, log_dir=tmp_path / "logs")
    qtbot.addWidget(dlg)
    _wait_preview(qtbot, dlg)
    assert "is already quantized (Q8_0)" in dlg.preview_label.text()
    assert not dlg.quantize_button.isEnabled()
    dlg.start()  # ignored: llama.cpp would refuse to requantize
    assert not dlg.running
    dlg.close()


def test_the_library_quantizes_the_selected_model_and_lists_the_result(qtbot, source, tmp_path):
    paths = AppPaths.under(tmp_path / "herd").ensure()
    library.add_file(paths, source)
    service = HubService(paths, offline=True, token=False)
    bridge = HubBridge(service, None, RTX)
    page = LibraryPage(paths, bridge, lambda _title, _text: True)
    qtbot.addWidget(page)
    assert page.table.rowCount() == 1
    page.table.selectRow(0)
    page.quantize_selected()
    dlg = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QuantizeDialog))
    try:
        assert dlg.source == source.resolve()  # the library knows the file, not the link
        dlg.set_recipe("scout-24gb-gpu")
        dlg.set_output(tmp_path / "Tiny-Scout-24.gguf")  # not beside it, in the test cache
        _wait_preview(qtbot, dlg)
        predicted = dlg.preview.plan.prediction if dlg.preview else None
        out = dlg.output
        assert predicted is not None and out is not None
        with qtbot.waitSignal(dlg.quantized, timeout=TIMEOUT_MS) as done:
            dlg.quantize_button.click()
            assert dlg.cancel_button.isVisible() and not dlg.quantize_button.isVisible()
        assert done.args == [str(out)]
        written = {t.name: t.type_name for t in read_gguf(out).tensors}
        assert written == predicted.types()
        assert abs(out.stat().st_size - predicted.file_bytes) <= 0.01 * predicted.file_bytes
        qtbot.waitUntil(lambda: not dlg.running, timeout=TIMEOUT_MS)
        assert "is in your library" in dlg.status_label.text()
        assert _leftovers(out.parent, out) == [out.name]  # no .partial beside it
        listed = [m.path for m in library.list_models(paths)]
        assert out.resolve() in [p.resolve() for p in listed]
        assert page.table.rowCount() == 2
    finally:
        dlg.close()
        bridge.shutdown()


def test_cancel_stops_the_child_and_leaves_no_file(qtbot, dialog):
    dialog.set_recipe("scout-24gb-gpu")
    _wait_preview(qtbot, dialog)
    out = dialog.output
    assert out is not None
    seen: list[bool] = []
    _at_first_progress(dialog, lambda: (seen.append(dialog.progress.isVisible()), dialog.cancel()))
    dialog.quantize_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)
    assert seen == [True]  # it was cancelled while running, with its progress shown
    assert dialog.status_label.text() == "Cancelled; nothing was written."
    assert dialog.written is None
    assert _leftovers(out.parent, out) == []
    assert dialog.quantize_button.isVisible() and dialog.quantize_button.isEnabled()


def test_cancel_before_the_job_starts_resets_the_dialog(qtbot, dialog):
    _wait_preview(qtbot, dialog)
    out = dialog.output
    assert out is not None
    dialog.start()
    dialog.cancel()  # at once: the job may not have left the queue
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)
    assert _leftovers(out.parent, out) == []
    assert not dialog.progress.isVisible()


def test_closing_during_a_run_ends_it_without_a_partial_file(qtbot, dialog):
    _wait_preview(qtbot, dialog)
    out = dialog.output
    assert out is not None
    _at_first_progress(dialog, dialog.close)  # joins the job: the child is killed, cleaned up
    dialog.quantize_button.click()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=TIMEOUT_MS)
    assert not dialog.running
    assert _leftovers(out.parent, out) == []


def test_the_model_menu_opens_it_and_the_result_joins_the_load_menu(qtbot, source, tmp_path):
    from app.core.settings import Settings
    from app.ui.main_window import MainWindow

    paths = AppPaths.under(tmp_path / "home").ensure()
    window = MainWindow(paths, Settings())
    qtbot.addWidget(window)
    window.show()
    try:
        menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Model")
        (action,) = [a for a in menu.actions() if a.text() == "&Quantize…"]
        action.trigger()
        (dlg,) = window.findChildren(QuantizeDialog)
        assert dlg.isVisible() and dlg.source is None  # no model loaded: the person picks one
        dlg.set_source(source)
        dlg.set_recipe("scout-mac-64gb")
        _wait_preview(qtbot, dlg)
        out = dlg.output
        with qtbot.waitSignal(dlg.quantized, timeout=TIMEOUT_MS):
            dlg.start()
        assert str(out) in window.model_bar.library
        dlg.close()
    finally:
        window.close()
