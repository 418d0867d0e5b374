"""The context-length slider: power-of-two stops from 2K to the model's maximum, labelled."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QSlider, QStyle, QStyleOptionSlider, QVBoxLayout, QWidget

MIN_CTX = 2048
MAX_CTX = 10_485_760  # Scout's trained maximum; the slider never goes further
K, M = 1024, 1024 * 1024


def context_steps(trained: int) -> list[int]:
    """The slider's stops: powers of two from 2K, then the top (which may not be one)."""
    top = min(trained or MAX_CTX, MAX_CTX)
    steps, n = [], MIN_CTX
    while n < top:
        steps.append(n)
        n *= 2
    steps.append(top)
    return steps


def tick_label(n: int) -> str:
    """Tokens as a tick label: ``2K``, ``128K``, ``1M``, ``10M`` (binary K and M)."""
    if n >= M:
        return f"{n / M:.3g}M"
    if n >= K:
        return f"{n / K:.3g}K"
    return str(n)


class ContextSlider(QWidget):
    """A slider over :func:`context_steps` with a label under each tick that has room.

    ``slider`` is the QSlider itself (its value is the index of a stop).
    """

    def __init__(self, steps: list[int], parent: QWidget | None = None) -> None:
        """One stop per entry of ``steps``."""
        super().__init__(parent)
        self.steps = list(steps)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, len(self.steps) - 1)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(1)
        self.ticks = _TickLabels(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.slider)
        layout.addWidget(self.ticks)

    def labels(self) -> list[str]:
        """Every stop's label, in order."""
        return [tick_label(n) for n in self.steps]

    def shown_labels(self) -> list[str]:
        """The labels drawn at the current width (crowded ones are left out)."""
        return [text for text, _ in self.ticks.placed()]

    def tick_x(self, index: int) -> int:
        """The x of stop ``index``'s tick, in this widget's coordinates."""
        opt = QStyleOptionSlider()
        self.slider.initStyleOption(opt)
        style = self.slider.style()
        cc = QStyle.ComplexControl.CC_Slider
        groove = style.subControlRect(cc, opt, QStyle.SubControl.SC_SliderGroove, self.slider)
        handle = style.subControlRect(cc, opt, QStyle.SubControl.SC_SliderHandle, self.slider)
        span = groove.width() - handle.width()
        pos = QStyle.sliderPositionFromValue(
            self.slider.minimum(), self.slider.maximum(), index, span
        )
        return self.slider.x() + groove.x() + pos + handle.width() // 2


class _TickLabels(QWidget):
    """The row of labels under the slider's ticks."""

    def __init__(self, owner: ContextSlider) -> None:
        super().__init__(owner)
        self._owner = owner
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """As tall as one line of small text."""
        return QSize(200, self.fontMetrics().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """As tall as one line of small text."""
        return self.sizeHint()

    def placed(self) -> list[tuple[str, QRect]]:
        """(label, rectangle) of each label that has room; the top's label always does."""
        fm = self.fontMetrics()
        n = len(self._owner.steps)
        rects = []
        for i, text in enumerate(self._owner.labels()):
            w = fm.horizontalAdvance(text) + 2
            x = self._owner.tick_x(i) - w // 2
            x = max(0, min(x, self.width() - w))
            rects.append((i, text, QRect(x, 0, w, self.height())))
        gap = fm.horizontalAdvance(" ")
        shown: list[tuple[str, QRect]] = []
        last = rects[-1][2] if rects else QRect()
        for i, text, rect in rects:
            if shown and rect.left() < shown[-1][1].right() + gap:
                continue
            if i < n - 1 and rect.right() + gap > last.left():
                continue  # the top's label always shows; a neighbour that crowds it does not
            shown.append((text, rect))
        return shown

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802, ARG002 (Qt's name)
        """Each label centred under its tick."""
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        for text, rect in self.placed():
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.end()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        """Re-place the labels."""
        super().resizeEvent(event)
        self.update()
