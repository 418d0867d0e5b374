"""Settings > Engine: the self-check's verdict, and Check again (the real self-check)."""

from __future__ import annotations

import os
from pathlib import Path

from app.core.engine import selfcheck
from app.core.engine.engine_config import SAFE, Attempt, CheckRecord, write_record
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.ui.main_window import MainWindow


def test_the_engine_tab_shows_what_crashed_and_checks_again(qtbot, tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path / "home").ensure()
    crashed = Attempt(selfcheck.CANDIDATES[0], False, "crashed (SIGSEGV)", 0.4, "amx repack")
    record = CheckRecord(
        selfcheck.machine_fingerprint(),
        (crashed, Attempt(SAFE, True, "decoded 4 tokens", 0.3)),
        SAFE,
        "llama.cpp's AMX path crashed (SIGSEGV) on this CPU; it is off (...)",
        0.7,
        0.0,
    )
    write_record(paths.state, record)
    window = MainWindow(paths, Settings())
    qtbot.addWidget(window)
    try:
        dialog = window.open_settings()
        page = dialog.engine_page
        assert page is not None
        assert dialog.tabs.tabText(dialog.tabs.indexOf(page)) == "Engine"
        text = page.summary.text()
        assert "without repacked CPU weights" in text and "AMX path crashed" in text
        assert "crashed (SIGSEGV)" in text and "amx repack" in text
        window.bridge.client.check = record
        with qtbot.waitSignal(page.checked, timeout=60_000) as blocker:
            page.check_button.click()
        fresh: CheckRecord = blocker.args[0]
        assert fresh.new and fresh.works  # this machine, checked for real
        assert "AMX path crashed" not in page.summary.text() or not fresh.attempts[0].ok
        assert window.bridge.client.check is None  # the next load reads the new verdict
        assert page.check_button.isEnabled()
        dialog.reject()
    finally:
        window.close()
    assert os.path.exists(paths.state / "engine-check.json")
