"""What an empty conversation shows: Herd's welcome, a hint, and buttons to act on it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

MAX_TEXT_WIDTH = 640

Action = tuple[str, Callable[[], object]]
"""A button: its text and what it does."""


class EmptyState(QWidget):
    """The welcome text of an empty chat, the current hint, and up to a few action buttons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(12)
        self.label = QLabel(self)
        self.label.setObjectName("emptyState")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setMaximumWidth(MAX_TEXT_WIDTH)  # lines a reader's eye can follow
        centred = QHBoxLayout()
        centred.addStretch(1)
        centred.addWidget(self.label, 100)
        centred.addStretch(1)
        column.addLayout(centred)
        self._row = QHBoxLayout()
        self._row.addStretch(1)
        self._row.addStretch(1)
        column.addLayout(self._row)
        self.buttons: list[QPushButton] = []
        self.set_hint("")

    def set_hint(self, hint: str, actions: Sequence[Action] = ()) -> None:
        """Show ``hint`` (rich text) under the welcome, and a button per action (first: default)."""
        hint_html = f"<p style='margin-top:6px'>{hint}</p>" if hint else ""
        self.label.setText(
            "<p style='font-size:17pt; font-weight:600'>Herd</p>"
            "<p>Private chat with Llama 4, right on this computer.<br>"
            "Nothing you type leaves it.</p>" + hint_html
        )
        for button in self.buttons:
            self._row.removeWidget(button)
            button.deleteLater()
        self.buttons = []
        for index, (text, act) in enumerate(actions):
            button = QPushButton(text, self)
            button.setDefault(index == 0)
            button.clicked.connect(functools.partial(_call, act))
            self._row.insertWidget(1 + index, button)
            self.buttons.append(button)


def _call(act: Callable[[], object], _checked: bool = False) -> None:
    act()
