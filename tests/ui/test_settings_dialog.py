"""The Settings dialog: sampling, presets through the widgets, live theme and font."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from app.core.chat.presets import BUILTIN_PRESETS, PresetStore
from app.core.settings import FONT_SIZE_MIN, SamplingSettings, Settings, Theme
from app.ui.settings.settings_dialog import SettingsDialog
from app.ui.theme import apply_appearance, is_dark


@pytest.fixture
def app(qapp: QApplication):
    """The application, with its palette and font put back after the test."""
    palette, font = QPalette(qapp.palette()), qapp.font()
    yield qapp
    apply_appearance(qapp, Theme.SYSTEM, 0)
    qapp.setPalette(palette)
    qapp.setFont(font)


@pytest.fixture
def store(tmp_path: Path) -> PresetStore:
    return PresetStore(tmp_path / "presets.json")


@pytest.fixture
def dialog(qtbot, app, store):
    d = SettingsDialog(Settings(), store)
    qtbot.addWidget(d)
    return d


def _press(d: SettingsDialog, which: QDialogButtonBox.StandardButton) -> None:
    d.buttons.button(which).click()


OK, CANCEL, APPLY = (
    QDialogButtonBox.StandardButton.Ok,
    QDialogButtonBox.StandardButton.Cancel,
    QDialogButtonBox.StandardButton.Apply,
)


def test_shows_the_settings(qtbot, app, store) -> None:
    s = Settings(sampling=SamplingSettings(temperature=1.3, top_k=0, seed=7), font_size=15)
    d = SettingsDialog(dataclasses.replace(s, theme=Theme.DARK), store)
    qtbot.addWidget(d)
    assert d.current_settings() == dataclasses.replace(s, theme=Theme.DARK)
    assert d.sampling_page.fields["top_k"].text() == "Off"
    assert d.sampling_page.fields["min_p"].spin.text() == "Off"  # 0, the default
    assert not d.sampling_page.random_seed.isChecked()


def test_temperature_change_is_emitted(qtbot, dialog: SettingsDialog) -> None:
    dialog.sampling_page.fields["temperature"].spin.setValue(0.95)
    assert dialog.sampling_page.fields["temperature"].slider.value() == 95
    with qtbot.waitSignal(dialog.settings_applied, timeout=1000) as blocker:
        _press(dialog, APPLY)
    new = blocker.args[0]
    assert isinstance(new, Settings) and new.sampling.temperature == 0.95
    assert new.load == Settings().load


def test_slider_moves_the_value(dialog: SettingsDialog) -> None:
    dialog.sampling_page.fields["top_p"].slider.setValue(42)
    assert dialog.current_settings().sampling.top_p == 0.42


def test_seed_random_checkbox(dialog: SettingsDialog) -> None:
    page = dialog.sampling_page
    page.random_seed.setChecked(False)
    page.fields["seed"].setValue(1234)
    assert dialog.current_settings().sampling.seed == 1234
    page.random_seed.setChecked(True)
    assert not page.fields["seed"].isEnabled()
    assert dialog.current_settings().sampling.seed == -1


def test_reset_to_defaults(qtbot, app, store) -> None:
    odd = SamplingSettings(temperature=1.9, top_p=0.3, top_k=5, min_p=0.5, max_tokens=9, seed=3)
    d = SettingsDialog(Settings(sampling=odd), store)
    qtbot.addWidget(d)
    d.sampling_page.reset_button.click()
    assert d.current_settings().sampling == SamplingSettings()
    assert (d.current_settings().sampling.top_k, d.current_settings().sampling.min_p) == (0, 0)


def test_ok_emits_and_closes(qtbot, dialog: SettingsDialog) -> None:
    dialog.show()
    dialog.sampling_page.fields["max_tokens"].setValue(4096)
    with qtbot.waitSignal(dialog.settings_applied, timeout=1000) as blocker:
        _press(dialog, OK)
    assert blocker.args[0].sampling.max_tokens == 4096
    assert not dialog.isVisible() and dialog.result() == dialog.DialogCode.Accepted


def _names(store: PresetStore) -> list[str]:
    return [p.name for p in store.list()[len(BUILTIN_PRESETS) :]]


def test_preset_create_edit_delete(qtbot, dialog: SettingsDialog, store: PresetStore) -> None:
    page = dialog.prompts_page
    page.new_button.click()
    assert _names(store) == ["New preset"] and page.name_edit.text() == "New preset"
    qtbot.keyClick(page.name_edit, "a", modifier=Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(page.name_edit, "Pirate")
    page.text_edit.setPlainText("Arr.")
    assert _names(store) == ["Pirate"] and store.list()[-1].text == "Arr."
    assert page.list.currentItem().text() == "Pirate"
    page.default_combo.setCurrentIndex(page.default_combo.findText("Pirate"))
    with qtbot.waitSignal(dialog.settings_applied, timeout=1000) as blocker:
        _press(dialog, APPLY)
    assert blocker.args[0].default_preset_id == store.list()[-1].id
    assert _names(PresetStore(store.path)) == ["Pirate"]  # saved on Apply
    page.delete_button.click()
    assert _names(store) == [] and page.current_id()
    assert page.default_id() == "none"  # the deleted default falls back: no system prompt
    _press(dialog, APPLY)
    assert _names(PresetStore(store.path)) == []


def test_duplicate_builtin_and_name_clash(dialog: SettingsDialog, store: PresetStore) -> None:
    page = dialog.prompts_page
    page.select("coder")
    assert not page.delete_button.isEnabled() and page.text_edit.isReadOnly()
    page.duplicate_button.click()
    assert _names(store) == ["Coder (copy)"] and not page.text_edit.isReadOnly()
    assert page.delete_button.isEnabled()
    page.name_edit.setText("Concise")
    page.name_edit.textEdited.emit("Concise")
    assert "already a preset" in page.note.text()
    assert _names(store) == ["Coder (copy)"]  # the store keeps the last good name


def test_cancel_discards(qtbot, app, dialog: SettingsDialog, store: PresetStore) -> None:
    font_before, dark_before = app.font().pointSize(), is_dark(app.palette())
    dialog.show()
    dialog.prompts_page.new_button.click()
    dialog.sampling_page.fields["temperature"].spin.setValue(1.5)
    dark = next(b for b in dialog.appearance_page.theme_group.buttons() if b.text() == "Dark")
    dark.setChecked(True)
    dialog.appearance_page.font_spin.setValue(20)
    assert is_dark(app.palette()) and app.font().pointSize() == 20  # previewed at once
    with qtbot.assertNotEmitted(dialog.settings_applied):
        _press(dialog, CANCEL)
    assert _names(store) == [] and not store.path.exists()
    assert is_dark(app.palette()) == dark_before and app.font().pointSize() == font_before


def test_theme_switch_changes_the_palette(app, dialog: SettingsDialog) -> None:
    buttons = {b.text(): b for b in dialog.appearance_page.theme_group.buttons()}
    buttons["Dark"].setChecked(True)
    assert is_dark(app.palette())
    buttons["Light"].setChecked(True)
    assert not is_dark(app.palette())
    buttons["Follow system"].setChecked(True)  # offscreen: no OS scheme, so light
    assert not is_dark(app.palette())
    assert dialog.current_settings().theme is Theme.SYSTEM


def test_font_size_changes_the_app_font(app, dialog: SettingsDialog) -> None:
    default = app.font().pointSize()
    dialog.appearance_page.font_spin.setValue(18)
    assert app.font().pointSize() == 18
    assert dialog.current_settings().font_size == 18
    dialog.appearance_page.font_spin.setValue(FONT_SIZE_MIN - 1)
    assert dialog.appearance_page.font_spin.text() == "System default"
    assert dialog.current_settings().font_size == 0 and app.font().pointSize() == default


def test_apply_keeps_appearance_after_cancel(app, dialog: SettingsDialog) -> None:
    dialog.appearance_page.font_spin.setValue(16)
    _press(dialog, APPLY)
    dialog.appearance_page.font_spin.setValue(22)
    _press(dialog, CANCEL)
    assert app.font().pointSize() == 16


def test_save_failure_is_shown_and_keeps_the_dialog(qtbot, app, tmp_path: Path) -> None:
    blocker_file = tmp_path / "file"
    blocker_file.write_text("x")
    d = SettingsDialog(Settings(), PresetStore(blocker_file / "presets.json"))
    qtbot.addWidget(d)
    d.show()
    with qtbot.assertNotEmitted(d.settings_applied):
        _press(d, OK)
    assert d.isVisible() and "Could not save" in d.error_label.text()
    d.hide()


def test_damaged_presets_file_is_reported(qtbot, app, tmp_path: Path) -> None:
    path = tmp_path / "presets.json"
    path.write_text("{oops")
    d = SettingsDialog(Settings(), PresetStore(path))
    qtbot.addWidget(d)
    texts = [w.text() for w in d.prompts_page.findChildren(type(d.error_label))]
    assert any("presets.json.bak" in t for t in texts)


def test_apply_appearance_accepts_strings(app) -> None:
    apply_appearance(app, "dark", 12)
    assert is_dark(app.palette()) and app.font().pointSize() == 12
    apply_appearance(app, "nonsense", 0)
    assert not is_dark(app.palette())


def test_system_theme_follows_the_os(app, monkeypatch) -> None:
    from app.ui import theme

    apply_appearance(app, Theme.SYSTEM, 0)
    monkeypatch.setattr(theme, "system_is_dark", lambda _app: True)
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert is_dark(app.palette())
    apply_appearance(app, Theme.LIGHT, 0)  # a chosen theme ignores the OS
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert not is_dark(app.palette())


def test_controls_use_the_core_ranges(dialog: SettingsDialog) -> None:
    fields = dialog.sampling_page.fields
    assert fields["top_k"].maximum() == 200 and fields["max_tokens"].maximum() == 32768
    assert fields["temperature"].spin.maximum() == 2.0
    assert "adventurous" in fields["temperature"].toolTip()


def test_token_counts_read_as_everywhere_else(dialog) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QSpinBox

    spins = [w for w in dialog.findChildren(QSpinBox) if w.suffix() == " tokens"]
    assert len(spins) == 1
    spins[0].setValue(2048)
    assert spins[0].text() == "2,048 tokens"
