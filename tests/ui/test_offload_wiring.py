"""From the window: open Offload & Context for the model, load with the plan."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from app.core.paths import AppPaths
from app.core.settings import LoadSettings, Settings, TemplateChoice
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with


def test_plan_dialog_loads_the_model_with_the_plan(qtbot, tmp_path: Path, tiny_scout: Path) -> None:
    paths = AppPaths.under(tmp_path / "home").ensure()
    start = LoadSettings(n_ctx=4096, n_threads=1, swa_full=True, template=TemplateChoice.MODEL)
    window = MainWindow(paths, Settings(load=start))
    qtbot.addWidget(window)
    window.show()
    try:
        assert not window.model_bar.plan_button.isEnabled()  # no model chosen yet
        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            load_with(window, tiny_scout, n_ctx=512)
        assert window.bridge.facts is not None and window.bridge.facts.n_ctx == 512
        qtbot.mouseClick(window.model_bar.plan_button, Qt.MouseButton.LeftButton)
        dialog = window.offload_dialog
        assert dialog is not None and dialog.isVisible()
        panel = dialog.panel
        panel.replan()
        assert panel.plan.fits
        assert panel.plan.n_ctx == 512  # it starts from the context in use
        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            qtbot.mouseClick(panel.load_button, Qt.MouseButton.LeftButton)
        assert not dialog.isVisible()
        planned = window.models.planned
        assert planned is not None
        assert planned.settings.swa_full is False  # the plan's small chunked-attention cache
        assert planned.settings.n_ctx == panel.plan.n_ctx == window.bridge.facts.n_ctx
        assert planned.settings.template is TemplateChoice.MODEL  # the template choice is kept
        assert window.models.wishes.get(tiny_scout).n_ctx == 512  # kept with this model
        assert window.settings.load == start  # and not in the app-wide settings
    finally:
        window.close()


def test_the_plan_opens_at_once_while_a_reply_streams(
    qtbot, tmp_path: Path, tiny_llama4_says_model: Path
) -> None:
    import time

    from app.core.settings import SamplingSettings

    paths = AppPaths.under(tmp_path / "home").ensure()
    settings = Settings(
        load=LoadSettings(n_ctx=4096, n_threads=1),
        sampling=SamplingSettings(max_tokens=3000),
        default_preset_id="none",
    )
    window = MainWindow(paths, settings)
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            load_with(window, tiny_llama4_says_model, n_ctx=4096)
        with qtbot.waitSignal(window.bridge.token_batch, timeout=30_000):
            window.send_message("talk for a long time")
        assert window.bridge.generating
        started = time.monotonic()
        window.models.open_plan()  # must not wait for the engine to finish the reply
        assert time.monotonic() - started < 1.0
        assert window.offload_dialog is not None and window.offload_dialog.isVisible()
        window.offload_dialog.close()
        with qtbot.waitSignal(window.bridge.reply_finished, timeout=30_000):
            window.stop_reply()
    finally:
        window.close()
