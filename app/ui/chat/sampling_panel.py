"""SamplingPanel: the open chat's sampling settings, in a side panel beside the transcript.

Each chat starts on the defaults (Settings > Sampling); changing a value here gives the chat
its own settings, saved with it and used from its next reply on, and "Reset to model
defaults" puts it back on the defaults. The panel only shows and asks: the conversation
controller saves. Its ``toggle_action`` (in the Chat menu and the chat header) opens and
closes it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.settings import SAMPLING_RANGES, SamplingSettings

WIDTH = 264
FIELDS = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "seed")
STEPS = {"temperature": 0.05, "top_p": 0.05, "min_p": 0.01}  # the decimal fields
OFF_AT_MINIMUM = {"top_k": "Off", "min_p": "Off", "seed": "Random"}
OWN_NOTE = "This chat's own settings, used from its next reply on."
DEFAULTS_NOTE = (
    "The model defaults (Settings › Sampling). Change a value to give this chat its own."
)


class SamplingPanel(QFrame):
    """The open chat's temperature, top-p, top-k, min-p, reply length and seed."""

    sampling_changed = Signal(object)  # SamplingSettings: the chat's own, as now shown
    reset_requested = Signal()  # back to the defaults

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("samplingPanel")
        self.setFixedWidth(WIDTH)
        self.setStyleSheet(
            "#samplingPanel { border-left: 1px solid palette(mid); }"
            "#samplingNote { color: palette(placeholder-text); }"
        )
        self._shown = SamplingSettings()
        self.toggle_action = QAction("Sam&pling for this chat", self)
        self.toggle_action.setIconText("Sampling")
        self.toggle_action.setToolTip("Show or hide this chat's sampling settings")
        self.toggle_action.setCheckable(True)
        self.toggle_action.toggled.connect(self._on_toggle_action_toggled)
        column = QVBoxLayout(self)
        column.setContentsMargins(16, 12, 12, 12)
        column.setSpacing(10)
        top = QHBoxLayout()
        title = QLabel("Sampling", self)
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        top.addWidget(title, 1)
        close = QToolButton(self)
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide the sampling panel")
        close.clicked.connect(self._on_close_button_clicked)
        top.addWidget(close)
        column.addLayout(top)
        self.note = QLabel(DEFAULTS_NOTE, self)
        self.note.setObjectName("samplingNote")
        self.note.setWordWrap(True)
        column.addWidget(self.note)
        form = QFormLayout()
        form.setVerticalSpacing(8)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.fields: dict[str, QSpinBox | QDoubleSpinBox] = {}
        for name in FIELDS:
            spec = SAMPLING_RANGES[name]
            field = self._field(name)
            label = QLabel(f"{spec.label}:", self)
            for widget in (label, field):
                widget.setToolTip(f"<p>{spec.help}</p>")
            form.addRow(label, field)
            self.fields[name] = field
        column.addLayout(form)
        self.reset_button = QPushButton("Reset to model defaults", self)
        self.reset_button.setToolTip("Use the defaults from Settings for this chat again")
        self.reset_button.clicked.connect(self.reset_requested)
        column.addWidget(self.reset_button)
        column.addStretch(1)
        self.set_sampling(SamplingSettings(), own=False)
        self.setVisible(False)  # until its toggle_action opens it

    def _field(self, name: str) -> QSpinBox | QDoubleSpinBox:
        spec = SAMPLING_RANGES[name]
        field: QSpinBox | QDoubleSpinBox
        if name in STEPS:
            field = QDoubleSpinBox(self)
            field.setDecimals(2)
            field.setSingleStep(STEPS[name])
            field.setRange(spec.minimum, spec.maximum)
        else:
            field = QSpinBox(self)
            field.setRange(int(spec.minimum), int(spec.maximum))
        if name == "max_tokens":
            field.setSingleStep(256)
            field.setGroupSeparatorShown(True)  # 2,048, as everywhere else
        field.setSpecialValueText(OFF_AT_MINIMUM.get(name, ""))
        field.setAlignment(Qt.AlignmentFlag.AlignRight)
        field.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.UpDownArrows)
        field.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        field.setKeyboardTracking(False)  # one change when typing ends, not one per key
        field.valueChanged.connect(self._on_field_value_changed)
        return field

    def sampling(self) -> SamplingSettings:
        """The settings the panel shows."""
        return self._shown

    def set_sampling(self, sampling: SamplingSettings, *, own: bool) -> None:
        """Show a chat's sampling: its ``own``, or the defaults it uses."""
        self._shown = sampling
        for name, field in self.fields.items():
            field.blockSignals(True)
            field.setValue(getattr(sampling, name))
            field.blockSignals(False)
        self.note.setText(OWN_NOTE if own else DEFAULTS_NOTE)
        self.reset_button.setEnabled(own)

    @Slot()
    def _on_field_value_changed(self) -> None:
        values: dict[str, Any] = {  # SamplingSettings' int and float fields
            name: round(field.value(), 2) if isinstance(field, QDoubleSpinBox) else field.value()
            for name, field in self.fields.items()
        }
        changed = dataclasses.replace(self._shown, **values)
        if changed != self._shown:
            self.sampling_changed.emit(changed)

    @Slot(bool)
    def _on_toggle_action_toggled(self, checked: bool) -> None:
        self.setVisible(checked)

    @Slot()
    def _on_close_button_clicked(self) -> None:
        self.toggle_action.setChecked(False)
