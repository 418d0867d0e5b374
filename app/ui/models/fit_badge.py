"""Coloured badges: where a quant would run (green, amber, red), its quality, and small pills.

The colours are the offload panel's ("fits" green, "does not fit" red) plus an amber for
"runs, but with the experts in system RAM", each in a light and a dark shade so the text
stays readable on either palette. The quant table draws its fit column with
:class:`FitBadgeDelegate`: a rounded pill, tinted, with the verdict's short words.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.core.hub.verdict import Fit, Quality
from app.ui.theme import is_dark

FIT_ROLE = Qt.ItemDataRole.UserRole + 1  # a fit cell's Fit, by name (the delegate's colour)

# (light palette, dark palette)
GREEN = ("#2e7d32", "#66bb6a")
AMBER = ("#8a5300", "#ffb74d")
RED = ("#c62828", "#ef5350")
BLUE = ("#1f5fb0", "#6cb4ff")

FIT_COLOURS = {Fit.ALL_GPU: GREEN, Fit.EXPERTS_CPU: AMBER, Fit.CPU_ONLY: AMBER, Fit.NO_FIT: RED}
QUALITY_COLOURS = {Quality.VERY_LOW: RED, Quality.LOW: AMBER}

PAD_X, PAD_Y, MARGIN = 8, 2, 4


def shade(colours: tuple[str, str], palette: QPalette) -> QColor:
    """The light or dark shade of ``colours`` for ``palette``."""
    return QColor(colours[1] if is_dark(palette) else colours[0])


def fit_colour(fit: Fit, palette: QPalette) -> QColor:
    """The badge colour of ``fit``."""
    return shade(FIT_COLOURS[fit], palette)


def quality_colour(q: Quality | None, palette: QPalette) -> QColor | None:
    """A warning colour for a low quality hint; None for the others (plain text)."""
    colours = QUALITY_COLOURS.get(q) if q is not None else None
    return shade(colours, palette) if colours else None


def pill_style(colour: QColor, palette: QPalette) -> str:
    """A QLabel style sheet that draws a small tinted pill in ``colour``."""
    tint = QColor(colour)
    tint.setAlpha(70 if is_dark(palette) else 40)
    rgba = f"rgba({tint.red()}, {tint.green()}, {tint.blue()}, {tint.alpha()})"
    return (
        f"QLabel {{ color: {colour.name()}; background: {rgba}; border: 1px solid "
        f"{colour.name()}; border-radius: 8px; padding: 0px 7px; font-weight: bold; }}"
    )


class FitBadgeDelegate(QStyledItemDelegate):
    """Draws a cell that carries a :data:`FIT_ROLE` as a coloured pill with its text."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        """The row's background (selection included), then the pill."""
        fit = fit_of(index)
        if fit is None:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text = opt.text
        opt.text = ""
        widget = opt.widget
        style = widget.style() if isinstance(widget, QWidget) else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        colour = fit_colour(fit, option.palette)
        font = _bold(opt.font)
        metrics = QFontMetrics(font)
        width = metrics.horizontalAdvance(text) + 2 * PAD_X
        height = metrics.height() + 2 * PAD_Y
        rect = QRectF(option.rect).adjusted(MARGIN, 0, 0, 0)
        rect.setWidth(min(width, rect.width() - MARGIN))
        rect.setTop(option.rect.center().y() - height / 2 + 0.5)
        rect.setHeight(height)
        tint = QColor(colour)
        tint.setAlpha(70 if is_dark(option.palette) else 36)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(colour)
        painter.setBrush(option.palette.base())  # readable on a selected row too
        painter.drawRoundedRect(rect, height / 2, height / 2)
        painter.setBrush(tint)
        painter.drawRoundedRect(rect, height / 2, height / 2)
        painter.setFont(font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def sizeHint(  # noqa: N802 - Qt's name
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        """Room for the whole pill: the bold text, its padding and the margins."""
        base = super().sizeHint(option, index)
        if fit_of(index) is None:
            return base
        metrics = QFontMetrics(_bold(option.font))
        text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        width = metrics.horizontalAdvance(text) + 2 * PAD_X + 3 * MARGIN
        return QSize(max(base.width(), width), max(base.height(), metrics.height() + 4 * PAD_Y))


def fit_of(index: QModelIndex | QPersistentModelIndex) -> Fit | None:
    """The Fit a cell carries (Qt keeps it as its name: a str enum turns into a str)."""
    name = index.data(FIT_ROLE)
    return Fit[name] if isinstance(name, str) and name in Fit.__members__ else None


def _bold(font: QFont) -> QFont:
    bold = QFont(font)
    bold.setBold(True)
    return bold
