"""The chat window's central area, and the sizes it remembers between runs.

A splitter between the conversation list and the chat lets the person choose the list's
width. The chat is the model bar and the banners over the transcript's column (header,
transcript, composer), with the sampling panel beside that column, open or closed. The
window's geometry, the list's width and whether the panel is open are kept in the history's
UI state (``ChatStore.set_state``) and come back at the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import QHBoxLayout, QMainWindow, QSplitter, QVBoxLayout, QWidget

from app.core.chat.store import ChatStore
from app.core.errors import HerdError
from app.ui.chat.sampling_panel import SamplingPanel
from app.ui.chat.sidebar import WIDTH

logger = logging.getLogger(__name__)

GEOMETRY_KEY = "window_geometry"
SIDEBAR_WIDTH_KEY = "sidebar_width"
PANEL_KEY = "sampling_panel"  # "open" or "closed"
HANDLE_PX = 5


def build_central(
    window: QMainWindow,
    *,
    sidebar: QWidget,
    top: Sequence[QWidget],
    column: Sequence[QWidget],
    stretch: QWidget,
    panel: SamplingPanel,
) -> QSplitter:
    """Lay out the window: ``sidebar`` | (``top`` over (``column`` beside ``panel``)).

    ``stretch`` is the widget of ``column`` that takes the spare height (the transcript).
    Returns the splitter between the sidebar and the chat.
    """
    splitter = QSplitter(Qt.Orientation.Horizontal, window)
    splitter.setObjectName("sidebarSplitter")
    splitter.setChildrenCollapsible(False)
    splitter.setHandleWidth(HANDLE_PX)
    splitter.addWidget(sidebar)
    chat = QWidget(splitter)
    rows = QVBoxLayout(chat)
    rows.setContentsMargins(0, 0, 0, 0)
    rows.setSpacing(0)
    for widget in top:
        rows.addWidget(widget)
    beside = QHBoxLayout()
    beside.setSpacing(0)
    transcript = QVBoxLayout()
    transcript.setSpacing(0)
    for widget in column:
        transcript.addWidget(widget)
    transcript.setStretchFactor(stretch, 1)
    beside.addLayout(transcript, 1)
    beside.addWidget(panel)
    rows.addLayout(beside, 1)
    splitter.addWidget(chat)
    splitter.setStretchFactor(0, 0)  # a wider window widens the chat, not the list
    splitter.setStretchFactor(1, 1)
    splitter.setSizes([WIDTH, max(1, window.width() - WIDTH)])
    window.setCentralWidget(splitter)
    return splitter


class WindowState:
    """Restores and saves the window's geometry, the list's width and the sampling panel."""

    def __init__(
        self, window: QMainWindow, splitter: QSplitter, panel: SamplingPanel, store: ChatStore
    ) -> None:
        self._window = window
        self._splitter = splitter
        self._panel = panel
        self._store = store

    @property
    def sidebar_width(self) -> int:
        """The conversation list's width, in pixels."""
        return self._splitter.sizes()[0]

    def set_sidebar_width(self, width: int) -> None:
        """Give the conversation list ``width`` pixels (within its limits)."""
        total = sum(self._splitter.sizes()) or self._window.width()
        self._splitter.setSizes([width, max(1, total - width)])

    def restore(self) -> None:
        """Bring back what :meth:`save` kept (nothing, the first time)."""
        try:
            geometry = self._store.get_state(GEOMETRY_KEY)
            width = self._store.get_state(SIDEBAR_WIDTH_KEY) or ""
            panel_open = self._store.get_state(PANEL_KEY) == "open"
        except HerdError as exc:
            logger.warning("could not read the window's saved layout: %s", exc.user_message)
            return
        if geometry:
            self._window.restoreGeometry(QByteArray.fromBase64(geometry.encode()))
        if width.isdigit():
            self.set_sidebar_width(int(width))
        self._panel.toggle_action.setChecked(panel_open)
        # saved as soon as it is opened or closed
        self._panel.toggle_action.toggled.connect(self._on_toggle_action_toggled)

    def save(self) -> None:
        """Keep the window's geometry and the list's width (at close)."""
        geometry = bytes(self._window.saveGeometry().toBase64().data()).decode()
        try:
            self._store.set_state(GEOMETRY_KEY, geometry)
            self._store.set_state(SIDEBAR_WIDTH_KEY, str(self.sidebar_width))
        except HerdError as exc:
            logger.warning("could not save the window's layout: %s", exc.user_message)

    def _on_toggle_action_toggled(self, checked: bool) -> None:
        try:
            self._store.set_state(PANEL_KEY, "open" if checked else "closed")
        except HerdError as exc:
            logger.warning("could not save whether the sampling panel is open: %s", exc)
