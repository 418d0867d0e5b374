"""ContextMeter: tokens in use out of the context, and what happens when it is full."""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QWidget,
)

from app.core.chat.budget import MeterLevel, OverflowPolicy, meter

_LEVEL_COLORS = {MeterLevel.OK: "#3d8ee0", MeterLevel.WARN: "#e0a030", MeterLevel.FULL: "#d9534f"}
_POLICIES = (
    (OverflowPolicy.STOP, "stop"),
    (OverflowPolicy.DROP_OLDEST, "drop oldest messages"),
)
POLICY_CAPTION = "When the chat is full:"


class ContextMeter(QWidget):
    """A small bar and "used / total tokens", plus the chat's overflow policy."""

    policy_changed = Signal(object)  # OverflowPolicy

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedSize(90, 8)
        self.label = QLabel(self)
        widest = self.label.fontMetrics().horizontalAdvance("888,888 / 8,888,888 tokens")
        self.label.setMinimumWidth(widest)
        self.policy_caption = QLabel(POLICY_CAPTION, self)
        self.policy_box = QComboBox(self)
        for policy, text in _POLICIES:
            self.policy_box.addItem(text, policy)
        self.policy_box.setToolTip(
            "When this chat no longer fits in the model's context: stop and say so, or "
            "leave out the oldest turns (the system prompt and pinned messages stay)"
        )
        self.policy_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        # its own width, whatever the status bar's message beside it
        self.policy_box.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.policy_box.currentIndexChanged.connect(self._on_policy_box_current_index_changed)
        row.addWidget(self.bar)
        row.addWidget(self.label)
        row.addSpacing(10)
        row.addWidget(self.policy_caption)
        row.addWidget(self.policy_box)
        self.used = 0
        self.total = 0
        self.set_usage(0, 0)

    @property
    def policy(self) -> OverflowPolicy:
        """The chosen overflow policy."""
        return OverflowPolicy(self.policy_box.currentData())  # Qt hands back the str value

    def set_usage(self, used: int, total: int) -> None:
        """Show ``used`` of ``total`` tokens (total 0: no model)."""
        self.used, self.total = used, total
        m = meter(used, total)
        self.label.setText(m.text if total else "no model")
        self.bar.setValue(int(m.fraction * 1000))
        self.bar.setStyleSheet(
            f"QProgressBar::chunk {{ background: {_LEVEL_COLORS[m.level]}; border-radius: 3px; }}"
            " QProgressBar { border: none; background: palette(mid); border-radius: 3px; }"
        )
        self.bar.setToolTip(f"{m.fraction:.0%} of the context in use")

    @Slot(int)
    def _on_policy_box_current_index_changed(self, _index: int) -> None:
        self.policy_changed.emit(self.policy)
