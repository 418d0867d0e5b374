"""A device's memory as a stacked bar: dense weights, experts, KV cache, compute, free.

A plan that needs more than a device may use is drawn as an overflow: the bar is scaled to
what is needed, the part beyond the usable memory is hatched in a warning colour, and the
caption says how much is too much.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.core.plan.planner import DevicePlan
from app.core.units import size_text
from app.ui.theme import is_dark

# (key, legend text, color): mid-saturation colors that read on light and dark windows.
SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("weights", "Dense weights", "#4e79a7"),
    ("experts", "Experts", "#f28e2b"),
    ("kv", "KV cache", "#59a14f"),
    ("compute", "Compute", "#b07aa1"),
    ("shared", "GPU's share (unified)", "#8d8d93"),
)
COLORS = {key: color for key, _, color in SEGMENTS}
FIGURES: tuple[tuple[str, str], ...] = (
    ("weights", "dense"),
    ("experts", "experts"),
    ("kv", "KV"),
    ("compute", "compute"),
    ("shared", "GPU's share"),
)
USABLE_TIP = "What the plan may use: the rest is kept free for the system and other apps"


def verdict_colors(widget: QWidget) -> tuple[str, str]:
    """(good, bad) text colours that read on ``widget``'s palette."""
    return ("#66bb6a", "#ef5350") if is_dark(widget.palette()) else ("#2e7d32", "#c62828")


class MemoryBarWidget(QWidget):
    """One device's memory as a stacked horizontal bar, the usable part marked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty bar; :meth:`set_usage` fills it."""
        super().__init__(parent)
        self._parts: dict[str, int] = {}
        self._capacity = 1
        self._budget = 1
        self.setMinimumHeight(24)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_usage(self, parts: dict[str, int], capacity: int, budget: int) -> None:
        """Show ``parts`` (bytes by segment key) out of ``capacity``, ``budget`` usable."""
        self._parts = {k: v for k, v in parts.items() if v > 0}
        self._capacity = max(capacity, 1)
        self._budget = budget if budget > 0 else self._capacity
        self.update()

    def parts(self) -> dict[str, int]:
        """Bytes per segment, ``free`` included."""
        return {**self._parts, "free": self.free()}

    def used(self) -> int:
        """Bytes planned on this device."""
        return sum(self._parts.values())

    def free(self) -> int:
        """Capacity not planned for (0 when over)."""
        return max(self._capacity - self.used(), 0)

    def overflow(self) -> int:
        """Bytes planned beyond the usable memory (0 when it fits)."""
        return max(self.used() - self._budget, 0)

    def segment_texts(self) -> dict[str, str]:
        """The size written on each segment (where it has room), with its unit."""
        return {key: size_text(n) for key, n in self._parts.items()}

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """Wide and short."""
        return QSize(480, 24)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802, ARG002 (Qt's name)
        """Segments left to right, free space last; the usable limit or the overflow."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        rect = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        scale = max(self._capacity, self.used())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(pal.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(rect, 4, 4)
        limit = rect.left() + rect.width() * min(self._budget, scale) / scale
        over = self.overflow()
        fm = painter.fontMetrics()
        x = rect.left()
        for key, _, color in SEGMENTS:
            n = self._parts.get(key, 0)
            if not n:
                continue
            w = rect.width() * n / scale
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(color))
            painter.drawRect(QRectF(x, rect.top(), w, rect.height()))
            room = QRectF(x, rect.top(), (min(x + w, limit) if over else x + w) - x, rect.height())
            text = size_text(n)
            if room.width() > fm.horizontalAdvance(text) + 8:
                painter.setPen(QColor("#ffffff"))
                painter.drawText(room, Qt.AlignmentFlag.AlignCenter, text)
            x += w
        bad = QColor(verdict_colors(self)[1])
        if over:
            excess = QRectF(limit, rect.top(), x - limit, rect.height())
            fill = QColor(bad)
            fill.setAlpha(200)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRect(excess)
            painter.setBrush(QBrush(QColor("#ffffff"), Qt.BrushStyle.BDiagPattern))
            painter.drawRect(excess)
            text = f"+{size_text(over)}"
            if excess.width() > fm.horizontalAdvance(text) + 8:
                painter.setPen(QColor("#ffffff"))
                font = painter.font()
                font.setBold(True)
                painter.setFont(font)
                painter.drawText(excess, Qt.AlignmentFlag.AlignCenter, text)
            painter.setPen(QPen(bad, 2))
            painter.drawLine(int(limit), int(rect.top()), int(limit), int(rect.bottom()))
        elif self._budget < scale:
            pen = QPen(pal.color(QPalette.ColorRole.WindowText), 1.5, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawLine(int(limit), int(rect.top()), int(limit), int(rect.bottom()))
        frame = QPen(bad, 2) if over else QPen(pal.color(QPalette.ColorRole.Mid), 1)
        painter.setPen(frame)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect, 4, 4)
        painter.end()


class DeviceMapWidget(QWidget):
    """A device's title and total, its memory bar, and the figures under it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """Title row, bar and figures, stacked; one line each."""
        super().__init__(parent)
        self.title = QLabel(self)
        self.usage = QLabel(self)
        self.usage.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.bar = MemoryBarWidget(self)
        self.numbers = QLabel(self)
        self.numbers.setToolTip(USABLE_TIP)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.title, 1)
        top.addWidget(self.usage)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 2)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        layout.addWidget(self.numbers)

    def show_device(self, d: DevicePlan, shared: int = 0) -> None:
        """Show ``d``; ``shared``: bytes the GPU takes from this (unified) pool."""
        parts = {"weights": d.weights, "experts": d.experts, "kv": d.kv, "compute": d.compute}
        if shared:
            parts["shared"] = shared
        budget = d.budget + shared
        self.bar.set_usage(parts, d.capacity, budget)
        used = self.bar.used()
        self.title.setText(
            f"<b>{html.escape(d.name)}</b> · {html.escape(d.description)}"
            f" · {'GPU' if d.kind == 'gpu' else 'system RAM' if d.kind == 'cpu' else 'worker'}"
        )
        over = self.bar.overflow()
        if over:
            bad = verdict_colors(self)[1]
            self.usage.setText(
                f"<b style='color:{bad}'>{size_text(used)} needed, {size_text(budget)} usable:"
                f" {size_text(over)} too much</b>"
            )
        else:
            self.usage.setText(f"<b>{size_text(used)}</b> of {size_text(d.capacity)} planned")
        figures = [f"{name} {size_text(parts[key])}" for key, name in FIGURES if parts.get(key)]
        if self.bar.free():
            figures.append(f"free {size_text(self.bar.free())}")
        figures.append(f"usable {size_text(budget)}")
        self.numbers.setText(" · ".join(figures))


class LegendWidget(QWidget):
    """Color swatches naming the bar segments; the overflow's only when there is one."""

    def __init__(self, unified: bool, parent: QWidget | None = None) -> None:
        """One swatch per segment; the unified-memory one only on such machines."""
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for key, text, color in SEGMENTS:
            if key == "shared" and not unified:
                continue
            self._item(layout, text, f"background: {color}; border-radius: 2px;")
        self._item(layout, "Free", "border: 1px solid palette(mid); background: palette(base);")
        usable = QLabel("┆ usable limit", self)
        usable.setToolTip(USABLE_TIP)
        layout.addWidget(usable)
        layout.addSpacing(8)
        self.too_much = self._item(layout, "Too much", "")
        layout.addStretch(1)
        self.show_overflow(False)

    def show_overflow(self, shown: bool) -> None:
        """Name the hatched overflow when some bar has one."""
        bad = verdict_colors(self)[1]
        swatch, label = self.too_much
        swatch.setStyleSheet(f"background: {bad}; border-radius: 2px;")
        swatch.setVisible(shown)
        label.setVisible(shown)

    def _item(self, layout: QHBoxLayout, text: str, style: str) -> tuple[QLabel, QLabel]:
        swatch = QLabel(self)
        swatch.setFixedSize(12, 12)
        swatch.setStyleSheet(style)
        label = QLabel(text, self)
        layout.addWidget(swatch)
        layout.addWidget(label)
        layout.addSpacing(8)
        return swatch, label
