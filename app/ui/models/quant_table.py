"""The quant picker's table: each quant with its quality, size, fit badge and context.

Every row starts with the estimate from the size (:func:`app.core.hub.verdict.judge`) and
"checking…"; the planner's verdict from the quant's headers replaces it when it comes.
The recommended quant is marked (★, bold) and moves when the planner changes the picture.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHeaderView, QTableWidget, QWidget

from app.core.hub.catalog import QuantOption
from app.core.hub.verdict import Fit, Verdict, quality
from app.core.units import size_text
from app.ui.models.fit_badge import FIT_ROLE, FitBadgeDelegate, quality_colour
from app.ui.models.model_tables import item_at, make_item, make_table

QUANT, QUALITY, SIZE, FIT, CONTEXT, PICK = range(6)
HEADERS = ["Quant", "Quality", "Size", "On this machine", "Context", ""]
RECOMMENDED = "★ recommended"
CHECKING = "checking…"


def make_quant_table(parent: QWidget | None = None) -> QTableWidget:
    """An empty quant table: columns as wide as their contents, the badge column drawn."""
    table = make_table(HEADERS)
    table.setParent(parent)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideNone)
    table.setItemDelegateForColumn(FIT, FitBadgeDelegate(table))
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    rows = table.verticalHeader()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(table.fontMetrics().height() * 2)  # room for the badges
    return table


def fill(table: QTableWidget, options: tuple[QuantOption, ...], verdicts: list[Verdict]) -> None:
    """One row per quant, with the estimates; every context cell says "checking…"."""
    table.setRowCount(len(options))
    for row, option in enumerate(options):
        hint = quality(option.quant)
        files = "\n".join(f.name for f in option.files)
        cells = {
            QUANT: make_item(option.quant, row),
            QUALITY: make_item(hint.text() if hint else "unknown"),
            SIZE: make_item(size_text(option.size)),
            FIT: make_item(""),
            CONTEXT: make_item(CHECKING),
            PICK: make_item(""),
        }
        parts = f"{option.n_parts} files" if option.n_parts > 1 else "1 file"
        cells[SIZE].setToolTip(f"{parts}:\n{files}")
        cells[SIZE].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        cells[CONTEXT].setForeground(table.palette().placeholderText())
        colour = quality_colour(hint, table.palette())
        if colour is not None:
            cells[QUALITY].setForeground(colour)
        if hint is None:
            cells[QUALITY].setForeground(table.palette().placeholderText())
        for col, cell in cells.items():
            table.setItem(row, col, cell)
        set_verdict(table, row, verdicts[row])


def set_verdict(table: QTableWidget, row: int, verdict: Verdict, reasons: str = "") -> None:
    """Show ``verdict`` in ``row``: the badge, and the context when the planner gave one."""
    cell = item_at(table, row, FIT)
    cell.setText(verdict.badge())
    cell.setData(FIT_ROLE, verdict.fit.name)
    if verdict.planned:
        cell.setToolTip(f"The planner, from this quant's headers:\n{reasons}".rstrip())
        context = item_at(table, row, CONTEXT)
        context.setText(f"{verdict.n_ctx:,} tokens" if verdict.n_ctx else "—")
        context.setData(Qt.ItemDataRole.ForegroundRole, None)
        context.setToolTip(
            "The context the planner chose for this machine." if verdict.n_ctx else ""
        )
    else:
        cell.setToolTip("Estimated from the size; the planner is reading the headers…")
    muted = verdict.fit is Fit.NO_FIT
    for col in (QUANT, SIZE):
        item = item_at(table, row, col)
        colour = table.palette().placeholderText() if muted else None
        item.setData(Qt.ItemDataRole.ForegroundRole, colour)


def set_unplanned(table: QTableWidget, row: int, why: str) -> None:
    """The planner could not judge ``row``: the estimate stays, and says so."""
    context = item_at(table, row, CONTEXT)
    context.setText("—")
    tip = f"Estimated from the size; the planner could not read the headers: {why}"
    context.setToolTip(tip)
    item_at(table, row, FIT).setToolTip(tip)


def mark_best(table: QTableWidget, best: int | None) -> None:
    """Bold the recommended row and mark it ★; unmark the others."""
    for row in range(table.rowCount()):
        pick = row == best
        item_at(table, row, PICK).setText(RECOMMENDED if pick else "")
        for col in range(table.columnCount()):
            item = item_at(table, row, col)
            font = QFont(table.font())
            font.setBold(pick)
            item.setFont(font)
