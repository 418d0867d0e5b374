"""The first run: the demo is said to be a demo, with what to get instead, in one click."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from app.core.paths import AppPaths
from app.core.settings import LoadSettings, Settings
from app.ui.main_window import MainWindow
from app.ui.models.model_manager import ModelManagerDialog
from tests.ui.conftest import load_with


def test_the_demo_says_what_it_is_and_leads_to_llama_4(
    qtbot, tmp_path: Path, smollm2_gguf: Path
) -> None:
    paths = AppPaths.under(tmp_path).ensure()
    window = MainWindow(paths, Settings(load=LoadSettings(n_ctx=1024)))
    qtbot.addWidget(window)
    window.show()
    try:
        bar = window.model_bar
        row = bar.layout()
        order = [row.indexOf(b) for b in (bar.load_button, bar.unload_button, bar.plan_button)]
        assert order == sorted(order) and row.indexOf(bar.models_button) > order[-1]

        load_with(window, smollm2_gguf, n_ctx=1024)  # the demo model's file
        empty = window.chat_view.empty_state
        assert "Loading" in empty.label.text()  # not "Load a model…" while it loads
        assert bar.progress.maximum() == 0 or bar.progress.value() > 0  # moving, not empty
        with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
            pass
        details = bar.details_label.text().replace("\u00a0", " ")
        assert "Demo model" in bar.name_label.text() and "not Llama 4" in details
        assert "tiny demo model" in empty.label.text()
        assert "Llama 4" in empty.label.text()
        assert empty.buttons and empty.buttons[-1].text() == "Browse models…"
        if len(empty.buttons) == 2:  # something fits this machine: one button gets it
            assert empty.buttons[0].text().startswith("Get Llama 4")
        qtbot.mouseClick(empty.buttons[0], Qt.MouseButton.LeftButton)
        dialogs = window.findChildren(ModelManagerDialog)
        assert dialogs, "the Model Manager did not open"
        dialogs[-1].reject()
        # the Model Manager is one click away from the model bar too
        qtbot.mouseClick(bar.models_button, Qt.MouseButton.LeftButton)
        assert len(window.findChildren(ModelManagerDialog)) >= 1
        for dialog in window.findChildren(ModelManagerDialog):
            dialog.reject()
    finally:
        window.close()


def test_the_hint_offers_the_suggested_repository_or_says_why_not() -> None:
    from app.core.first_run import outlook
    from app.core.hardware.spec import hardware_from_spec
    from app.ui.models.welcome import demo_hint

    gib = 1 << 30
    asked: list[str] = []
    text, actions = demo_hint(
        outlook(hardware_from_spec([24 * gib], 64 * gib, False)), asked.append
    )
    assert "Llama 4 Scout" in text and "tok/s" in text
    assert [a[0].startswith("Get Llama 4 Scout") for a in actions] == [True, False]
    actions[0][1]()
    actions[1][1]()
    assert asked == ["unsloth/Llama-4-Scout-17B-16E-Instruct-GGUF", ""]
    text, actions = demo_hint(outlook(hardware_from_spec([], 8 * gib, False)), asked.append)
    assert "needs about" in text and [a[0] for a in actions] == ["Browse models…"]


def test_the_model_bar_wraps_between_phrases_not_inside_them() -> None:
    from app.ui.models.model_bar import unbroken

    line = unbroken("Plan: all on the CPU · 8,192 tokens of context · about 147 tok/s")
    assert line.split("  ·  ") == [
        "Plan:\u00a0all\u00a0on\u00a0the\u00a0CPU",
        "8,192\u00a0tokens\u00a0of\u00a0context",
        "about\u00a0147\u00a0tok/s",
    ]


def test_the_app_has_its_icon(qapp) -> None:  # noqa: ANN001
    from app.ui.app import ICON, app_icon

    assert ICON.is_file()
    icon = app_icon()
    assert not icon.isNull()
    assert not icon.pixmap(64, 64).toImage().isNull()


def test_no_model_means_no_plan_line(qtbot, tmp_path: Path) -> None:
    from app.ui.models.model_bar import ModelBar

    bar = ModelBar(tmp_path)
    qtbot.addWidget(bar)
    bar.show()
    bar.show_plan("Plan: all on the CPU · 2,048 tokens of context")
    assert bar.plan_label.isVisible()
    bar.show_none("The engine stopped. Reload to continue.")
    assert not bar.plan_label.isVisible()  # a plan of no model would say what is not true


def test_the_model_bar_gives_the_files_size_as_the_library_does(
    qtbot, tmp_path: Path, tiny_scout: Path
) -> None:
    from app.core.units import size_text

    window = MainWindow(AppPaths.under(tmp_path).ensure(), Settings(load=LoadSettings(n_ctx=512)))
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
            load_with(window, tiny_scout, n_ctx=512)
        shown = window.model_bar.details_label.text().replace("\u00a0", " ")
        assert size_text(tiny_scout.stat().st_size) in shown.split("  ·  ")
    finally:
        window.close()
