"""The window loads through the plan: Load, the restored model, each model with its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.core.load import settings_json
from app.core.model_wishes import ModelWishes
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, Settings
from app.ui.app import choose_model
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with

ROOT = Path(__file__).resolve().parents[2]


def _window(qtbot, home: Path, settings: Settings | None = None) -> MainWindow:
    window = MainWindow(AppPaths.under(home).ensure(), settings or Settings())
    qtbot.addWidget(window)
    window.show()
    return window


def test_the_restored_model_is_loaded_through_its_plan(qtbot, tmp_path: Path, tiny_scout: Path):
    # what run_app does at start: the last model, with the wishes kept for it
    settings = Settings(load=LoadSettings(n_ctx=777), last_model=str(tiny_scout))
    window = _window(qtbot, tmp_path / "home", settings)
    try:
        window.models.wishes.set(tiny_scout, ModelWishes(n_ctx=2048))
        target = choose_model(None, settings)
        assert target == tiny_scout
        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            window.load_model(target)
        planned = window.models.planned
        assert planned is not None and planned.plan.fits
        assert window.bridge.facts is not None and window.bridge.facts.n_ctx == 2048
        assert planned.settings.n_threads == planned.plan.n_threads  # the planner's threads
        bar = window.model_bar.plan_label
        shown = bar.text().replace("\u00a0", " ")  # phrases are kept whole when it wraps
        assert bar.isVisible() and shown.startswith("Plan: all on the CPU")
        assert "2,048 tokens of context" in shown
    finally:
        window.close()


def test_a_plan_never_leaks_to_the_next_model(
    qtbot, tmp_path: Path, tiny_scout: Path, smollm2_gguf: Path
) -> None:
    window = _window(qtbot, tmp_path / "home")
    try:
        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            load_with(window, tiny_scout, n_ctx=512, gpu_expert_layers=0)
        assert window.bridge.facts is not None and window.bridge.facts.n_ctx == 512
        with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
            window.load_model(smollm2_gguf)  # never configured: its own plan
        assert window.bridge.facts.n_ctx == 8192  # its trained context, which fits
        assert window.models.wishes.get(smollm2_gguf) == ModelWishes()
        assert window.models.wishes.get(tiny_scout).n_ctx == 512  # kept with its model
        saved = json.loads((window._paths.config / "models.json").read_text())
        assert list(saved) == [str(tiny_scout.resolve())]
    finally:
        window.close()


def test_the_window_and_the_cli_send_the_same_settings(
    qtbot, tmp_path: Path, tiny_maverick: Path
) -> None:
    home = tmp_path / "home"
    window = _window(qtbot, home)
    try:
        with qtbot.waitSignal(window.bridge.loaded, timeout=30_000):
            load_with(window, tiny_maverick, n_ctx=1024, gpu_expert_layers=0)
        assert window.models.planned is not None
        from_window = settings_json(window.models.planned)
    finally:
        window.close()
    env = {**os.environ, "HERD_HOME": str(home)}  # the same models.json: the same wishes
    done = subprocess.run(
        [sys.executable, "-m", "app", "chat", str(tiny_maverick), "--dry-run", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from_cli = json.loads(done.stdout)
    assert from_cli == from_window
    assert from_cli["n_ctx"] == 1024
    plan = subprocess.run(
        [sys.executable, "-m", "app", "plan", str(tiny_maverick), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert json.loads(plan.stdout)["cpu_expert_layers"] == from_cli["cpu_expert_layers"]
