"""A device's memory as a stacked bar: dense weights, experts, KV cache, compute, free."""

from __future__ import annotations

import html

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.core.plan.planner import DevicePlan

GiB = 1 << 30

# (key, legend text, color): mid-saturation colors that read on light and dark windows.
SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("weights", "Dense weights", "#4e79a7"),
    ("experts", "Experts", "#f28e2b"),
    ("kv", "KV cache", "#59a14f"),
    ("compute", "Compute", "#b07aa1"),
    ("shared", "GPU's share (unified)", "#8d8d93"),
)
COLORS = {key: color for key, _, color in SEGMENTS}


def gib(n: float) -> str:
    """Bytes as GiB with one decimal, without the unit."""
    return f"{n / GiB:.1f}"


class MemoryBarWidget(QWidget):
    """One device's memory as a stacked horizontal bar, with a mark at the plan's budget."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty bar; :meth:`set_usage` fills it."""
        super().__init__(parent)
        self._parts: dict[str, int] = {}
        self._capacity = 1
        self._budget = 0
        self.setMinimumHeight(26)

    def set_usage(self, parts: dict[str, int], capacity: int, budget: int) -> None:
        """Show ``parts`` (bytes by segment key) out of ``capacity``, budget marked."""
        self._parts = {k: v for k, v in parts.items() if v > 0}
        self._capacity = max(capacity, 1)
        self._budget = budget
        self.update()

    def parts(self) -> dict[str, int]:
        """Bytes per segment, ``free`` included."""
        return {**self._parts, "free": self.free()}

    def free(self) -> int:
        """Capacity not planned for (0 when over)."""
        return max(self._capacity - sum(self._parts.values()), 0)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """Wide and short."""
        return QSize(480, 26)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802, ARG002 (Qt's name)
        """Draw the segments left to right, free space last, and the budget mark."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        total = max(self._capacity, sum(self._parts.values()))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(pal.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(rect, 4, 4)
        x = rect.left()
        for key, _, color in SEGMENTS:
            n = self._parts.get(key, 0)
            if not n:
                continue
            w = rect.width() * n / total
            seg = QRectF(x, rect.top(), w, rect.height())
            painter.setBrush(QColor(color))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRect(seg)
            if w > 34:
                painter.setPen(QColor("#ffffff"))
                painter.drawText(seg, Qt.AlignmentFlag.AlignCenter, gib(n))
            x += w
        if self._budget and self._budget < total:
            bx = rect.left() + rect.width() * self._budget / total
            pen = QPen(pal.color(QPalette.ColorRole.WindowText), 1.5, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawLine(int(bx), int(rect.top()), int(bx), int(rect.bottom()))
        over = sum(self._parts.values()) > self._capacity
        painter.setPen(QPen(QColor("#d32f2f") if over else pal.color(QPalette.ColorRole.Mid), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect, 4, 4)
        painter.end()


class DeviceMapWidget(QWidget):
    """A device's title, memory bar and figures."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """Title, bar and numbers, stacked."""
        super().__init__(parent)
        self.title = QLabel(self)
        self.bar = MemoryBarWidget(self)
        self.numbers = QLabel(self)
        self.numbers.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(3)
        for w in (self.title, self.bar, self.numbers):
            layout.addWidget(w)

    def show_device(self, d: DevicePlan, shared: int = 0) -> None:
        """Show ``d``; ``shared``: bytes the GPU takes from this (unified) pool."""
        parts = {"weights": d.weights, "experts": d.experts, "kv": d.kv, "compute": d.compute}
        if shared:
            parts["shared"] = shared
        budget = d.budget + shared
        self.bar.set_usage(parts, d.capacity, budget)
        used = d.total + shared
        self.title.setText(
            f"<b>{html.escape(d.name)}</b> · {html.escape(d.description)}"
            f" · {'GPU' if d.kind == 'gpu' else 'system RAM'}"
        )
        figures = [f"dense {gib(d.weights)}", f"experts {gib(d.experts)}"]
        figures += [f"KV {gib(d.kv)}", f"compute {gib(d.compute)}"]
        if shared:
            figures.append(f"GPU's share {gib(shared)}")
        figures.append(f"free {gib(self.bar.free())}")
        self.numbers.setText(
            f"{' · '.join(figures)} GiB — <b>{gib(used)} of {gib(d.capacity)} GiB</b>"
            f" planned; budget {gib(budget)} GiB"
        )


class LegendWidget(QWidget):
    """Color swatches naming the bar segments."""

    def __init__(self, unified: bool, parent: QWidget | None = None) -> None:
        """One swatch per segment; the unified-memory one only on such machines."""
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for key, text, color in SEGMENTS:
            if key == "shared" and not unified:
                continue
            swatch = QLabel(self)
            swatch.setFixedSize(12, 12)
            swatch.setStyleSheet(f"background: {color}; border-radius: 2px;")
            layout.addWidget(swatch)
            layout.addWidget(QLabel(text, self))
            layout.addSpacing(8)
        free = QLabel(self)
        free.setFixedSize(12, 12)
        free.setStyleSheet("border: 1px solid palette(mid); background: palette(base);")
        layout.addWidget(free)
        layout.addWidget(QLabel("Free", self))
        layout.addSpacing(8)
        budget = QLabel("┆ budget", self)
        budget.setToolTip("What the plan may use: the rest is kept free as a safety margin")
        layout.addWidget(budget)
        layout.addStretch(1)
