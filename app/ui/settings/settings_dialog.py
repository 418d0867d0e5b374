"""The Settings dialog: sampling, system-prompt presets, appearance and the local server."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.chat.presets import PresetStore
from app.core.errors import HerdError
from app.core.settings import (
    FONT_SIZE_MAX,
    FONT_SIZE_MIN,
    SAMPLING_RANGES,
    SamplingSettings,
    Settings,
    Theme,
)
from app.ui.settings.engine_page import EnginePage
from app.ui.settings.preset_editor import PresetEditor, hint_label
from app.ui.settings.server_page import ServerPage
from app.ui.theme import apply_appearance

_SLIDERS = {"temperature": 0.05, "top_p": 0.01, "min_p": 0.01, "repeat_penalty": 0.01}
THEME_LABELS = {Theme.SYSTEM: "Follow system", Theme.LIGHT: "Light", Theme.DARK: "Dark"}


class SliderSpin(QWidget):
    """A slider and a spin box showing one decimal value; either one changes it."""

    def __init__(self, minimum: float, maximum: float, step: float, parent: QWidget | None = None):
        """Make the pair for values from ``minimum`` to ``maximum`` in steps of ``step``."""
        super().__init__(parent)
        self._scale = 100
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(round(minimum * self._scale), round(maximum * self._scale))
        self.slider.setPageStep(round(step * self._scale * 2))
        self.spin = QDoubleSpinBox()
        self.spin.setRange(minimum, maximum)
        self.spin.setDecimals(2)
        self.spin.setSingleStep(step)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.spin.valueChanged.connect(self._on_spin_value_changed)

    def value(self) -> float:
        """The current value."""
        return round(self.spin.value(), 2)

    def set_value(self, value: float) -> None:
        """Show ``value`` in both widgets."""
        self.spin.setValue(value)

    @Slot(int)
    def _on_slider_value_changed(self, position: int) -> None:
        if round(self.spin.value() * self._scale) != position:
            self.spin.setValue(position / self._scale)

    @Slot(float)
    def _on_spin_value_changed(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * self._scale))
        self.slider.blockSignals(False)


class SamplingPage(QWidget):
    """How replies are sampled; built from the ranges in ``SAMPLING_RANGES``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """Make the controls (call :meth:`set_values` to fill them)."""
        super().__init__(parent)
        self.fields: dict[str, SliderSpin | QSpinBox] = {}
        groups = {"Word choice": QFormLayout(), "Reply": QFormLayout()}
        labels = [QLabel(f"{spec.label}:") for spec in SAMPLING_RANGES.values()]
        width = max(label.sizeHint().width() for label in labels)
        for label, (name, spec) in zip(labels, SAMPLING_RANGES.items(), strict=True):
            if name in _SLIDERS:
                widget: QWidget = SliderSpin(spec.minimum, spec.maximum, _SLIDERS[name])
            else:
                widget = QSpinBox()
                widget.setRange(int(max(spec.minimum, 0)), int(spec.maximum))
                widget.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            self.fields[name] = widget  # type: ignore[assignment]
            label.setMinimumWidth(width)  # the two groups' fields line up
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for w in (label, widget):
                w.setToolTip(f"<p>{spec.help}</p>")
            if name == "seed":
                widget = self._seed_row(widget)  # type: ignore[arg-type]
            form = groups["Reply" if name in ("max_tokens", "seed") else "Word choice"]
            form.setVerticalSpacing(10)
            form.addRow(label, widget)
        top_k, min_p, max_tokens = (self.fields[n] for n in ("top_k", "min_p", "max_tokens"))
        assert isinstance(top_k, QSpinBox) and isinstance(max_tokens, QSpinBox)
        assert isinstance(min_p, SliderSpin)
        top_k.setSpecialValueText("Off")  # 0, the default for both
        min_p.spin.setSpecialValueText("Off")
        max_tokens.setSuffix(" tokens")
        max_tokens.setGroupSeparatorShown(True)  # 2,048 tokens, as everywhere else
        max_tokens.setSingleStep(256)
        self.reset_button = QPushButton("Reset to Defaults")
        self.reset_button.setToolTip("Meta's recommended Llama 4 sampling settings.")
        self.reset_button.clicked.connect(self._on_reset_button_clicked)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(
            hint_label(
                "How the model picks its words. Changes apply from the next reply on; hover "
                "over a setting to see what it does."
            )
        )
        for title, form in groups.items():
            box = QGroupBox(title)
            box.setLayout(form)
            layout.addWidget(box)
        layout.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(hint_label("Defaults follow Meta's recommendations for Llama 4."), 1)
        row.addWidget(self.reset_button)
        layout.addLayout(row)

    def _seed_row(self, spin: QSpinBox) -> QWidget:
        self.random_seed = QCheckBox("Random each time")
        self.random_seed.setToolTip(SAMPLING_RANGES["seed"].help)
        self.random_seed.toggled.connect(spin.setDisabled)
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(spin)
        row.addWidget(self.random_seed)
        row.addStretch(1)
        return box

    def values(self) -> SamplingSettings:
        """The sampling settings the controls show."""
        values: dict[str, Any] = {  # int and float fields of SamplingSettings
            name: w.value() if isinstance(w, SliderSpin) else int(w.value())
            for name, w in self.fields.items()
        }
        if self.random_seed.isChecked():
            values["seed"] = -1
        return SamplingSettings(**values).clamped()

    def set_values(self, sampling: SamplingSettings) -> None:
        """Show ``sampling`` in the controls."""
        for name, widget in self.fields.items():
            value = getattr(sampling, name)
            if name == "seed":
                self.random_seed.setChecked(value < 0)
                value = max(value, 0)
            if isinstance(widget, SliderSpin):
                widget.set_value(value)
            else:
                widget.setValue(int(value))

    @Slot()
    def _on_reset_button_clicked(self) -> None:
        self.set_values(SamplingSettings())


class AppearancePage(QWidget):
    """Theme and font size, with a preview; the dialog applies changes to the app at once."""

    appearance_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        """Make the controls (call :meth:`set_values` to fill them)."""
        super().__init__(parent)
        self.theme_group = QButtonGroup(self)
        themes = QVBoxLayout()
        for theme, text in THEME_LABELS.items():
            button = QRadioButton(text)
            button.setProperty("theme", theme.value)
            self.theme_group.addButton(button)
            themes.addWidget(button)
        self.font_spin = QSpinBox()
        self.font_spin.setRange(FONT_SIZE_MIN - 1, FONT_SIZE_MAX)
        self.font_spin.setSpecialValueText("System default")
        self.font_spin.setSuffix(" pt")
        self.font_spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.font_spin.setToolTip("The size of all text in Herd, in points.")
        self.preview = QLabel()
        self.preview.setFrameShape(QFrame.Shape.StyledPanel)
        self.preview.setBackgroundRole(QPalette.ColorRole.Base)
        self.preview.setAutoFillBackground(True)
        self.preview.setWordWrap(True)
        self.preview.setMargin(14)
        self.preview.setText(
            "<p><b>You</b><br>What is a mixture-of-experts model?</p>"
            "<p><b>Llama 4</b><br>A model whose layers hold many small expert networks; "
            "each word is handled by only a few of them, so it runs faster than its size "
            "suggests.</p>"
        )
        form = QFormLayout()
        form.setVerticalSpacing(12)
        form.addRow("Theme:", themes)
        form.addRow("Font size:", self.font_spin)
        look, preview = QGroupBox("Look"), QGroupBox("Preview")
        look.setLayout(form)
        QVBoxLayout(preview).addWidget(self.preview)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(hint_label("Changes show at once; Cancel puts back how Herd looked."))
        layout.addWidget(look)
        layout.addWidget(preview)
        layout.addStretch(1)
        self.theme_group.buttonToggled.connect(self._on_theme_group_button_toggled)
        self.font_spin.valueChanged.connect(self._on_font_spin_value_changed)

    def theme(self) -> Theme:
        """The chosen theme."""
        button = self.theme_group.checkedButton()
        return Theme(button.property("theme")) if button is not None else Theme.SYSTEM

    def font_size(self) -> int:
        """The chosen size in points; 0 for the platform's default."""
        value = self.font_spin.value()
        return 0 if value < FONT_SIZE_MIN else value

    def set_values(self, theme: Theme, font_size: int) -> None:
        """Show a theme and size without announcing a change."""
        self.blockSignals(True)
        for button in self.theme_group.buttons():
            button.setChecked(button.property("theme") == theme.value)
        self.font_spin.setValue(font_size or FONT_SIZE_MIN - 1)
        self.blockSignals(False)

    @Slot(object, bool)
    def _on_theme_group_button_toggled(self, _button: object, checked: bool) -> None:
        if checked:
            self.appearance_changed.emit()

    @Slot(int)
    def _on_font_spin_value_changed(self, _value: int) -> None:
        self.appearance_changed.emit()


class SettingsDialog(QDialog):
    """Herd's preferences: sampling, system prompts and appearance.

    Theme and font size show at once across the app; Cancel puts back what was applied
    last. OK and Apply save the preset store and emit :attr:`settings_applied`.
    """

    settings_applied = Signal(object)  # the new Settings

    def __init__(
        self,
        settings: Settings,
        presets: PresetStore,
        parent: QWidget | None = None,
        *,
        engine_page: EnginePage | None = None,
    ) -> None:
        """Show ``settings`` and ``presets`` for editing (and the engine's verdict)."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = settings
        self._presets = presets
        self._snapshot = presets.snapshot()
        self.sampling_page = SamplingPage()
        self.prompts_page = PresetEditor(presets)
        self.appearance_page = AppearancePage()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.sampling_page, "Sampling")
        self.tabs.addTab(self.prompts_page, "System Prompts")
        self.tabs.addTab(self.appearance_page, "Appearance")
        self.engine_page = engine_page
        if engine_page is not None:
            self.tabs.addTab(engine_page, "Engine")
            self.finished.connect(lambda _code: engine_page.join())
        self.server_page = ServerPage()
        self.tabs.addTab(self.server_page, "Local Server")
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d9534f")
        self.error_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply
        )
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self._show(settings)
        self.resize(self.sizeHint().expandedTo(QSize(720, 520)))
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        apply = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        apply.clicked.connect(self._on_apply_button_clicked)
        self.appearance_page.appearance_changed.connect(self._on_appearance_page_changed)

    def _show(self, settings: Settings) -> None:
        self.sampling_page.set_values(settings.sampling)
        self.prompts_page.set_default_id(settings.default_preset_id)
        self.appearance_page.set_values(settings.theme, settings.font_size)
        self.server_page.set_values(settings)

    def current_settings(self) -> Settings:
        """The settings as the dialog shows them now (not yet applied)."""
        return self.server_page.applied_to(
            dataclasses.replace(
                self._settings,
                sampling=self.sampling_page.values(),
                theme=self.appearance_page.theme(),
                font_size=self.appearance_page.font_size(),
                default_preset_id=self.prompts_page.default_id(),
            )
        )

    def apply(self) -> bool:
        """Save the presets and announce the new settings; False if they cannot be used."""
        problem = self.server_page.problem()
        if problem:  # e.g. beyond this computer without a key: refused, said why
            self.tabs.setCurrentWidget(self.server_page)
            self.error_label.setText(problem)
            self.error_label.show()
            return False
        try:
            self._presets.save()
        except HerdError as exc:
            self.error_label.setText(exc.one_line())
            self.error_label.show()
            return False
        self.error_label.hide()
        self._snapshot = self._presets.snapshot()
        self._settings = self.current_settings()
        self.settings_applied.emit(self._settings)
        return True

    def reject(self) -> None:
        """Forget unapplied changes: presets, and the previewed theme and font."""
        self._presets.restore(self._snapshot)
        self._preview(self._settings.theme, self._settings.font_size)
        super().reject()

    @staticmethod
    def _preview(theme: Theme, font_size: int) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_appearance(app, theme, font_size)

    @Slot()
    def _on_appearance_page_changed(self) -> None:
        self._preview(self.appearance_page.theme(), self.appearance_page.font_size())

    @Slot()
    def _on_apply_button_clicked(self) -> None:
        self.apply()

    @Slot()
    def _on_buttons_accepted(self) -> None:
        if self.apply():
            self.accept()
