"""Table helpers shared by the Model Manager's tabs (catalog, downloads, library)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

REPO_ROLE = Qt.ItemDataRole.UserRole  # where a row keeps its repo id, key or index


def make_table(headers: list[str]) -> QTableWidget:
    """A read-only table that selects one whole row at a time."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.setAlternatingRowColors(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return table


def make_item(text: str, data: object = None) -> QTableWidgetItem:
    """A cell showing ``text``, carrying ``data`` under :data:`REPO_ROLE` when given."""
    item = QTableWidgetItem(text)
    if data is not None:
        item.setData(REPO_ROLE, data)
    return item


def selected_row(table: QTableWidget) -> int | None:
    """The selected row of ``table``, or None."""
    rows = table.selectionModel().selectedRows() if table.selectionModel() else []
    return rows[0].row() if rows else None


def item_at(table: QTableWidget, row: int, column: int) -> QTableWidgetItem:
    """The item at ``row``, ``column`` (every cell of these tables has one: make_item)."""
    item = table.item(row, column)
    assert item is not None, (row, column)
    return item
