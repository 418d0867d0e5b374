"""The Model Manager: catalog and search, the quant picker, the download queue, the library.

Open it with ``ModelManagerDialog(paths, parent)``; it emits ``model_chosen(path)`` with
the ``.gguf`` to load (the first part of a split model). All Hub work runs in
:class:`~app.ui.models.hub_bridge.HubBridge`. With its own bridge, closing the dialog pauses a
running download, which resumes the next time the dialog opens (or with ``herd pull``);
a window that passes in a long-lived ``bridge`` keeps downloads going while it is closed
(its quant planning stops with the dialog). The tabs are
:class:`~app.ui.models.catalog_page.CatalogPage`,
:class:`~app.ui.models.model_downloads.DownloadsPage` and
:class:`~app.ui.models.model_library.LibraryPage`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import HerdError, one_line
from app.core.hardware.probe import Hardware
from app.core.hub.service import HubService
from app.core.paths import AppPaths
from app.ui.models.catalog_page import CatalogPage
from app.ui.models.hub_bridge import HubBridge
from app.ui.models.model_downloads import DownloadsPage
from app.ui.models.model_library import LibraryPage
from app.ui.models.model_tables import REPO_ROLE

__all__ = ["REPO_ROLE", "DownloadsPage", "LibraryPage", "ModelManagerDialog"]


class ModelManagerDialog(QDialog):
    """Find, download and manage Llama 4 GGUF models."""

    model_chosen = Signal(str)  # the .gguf to load (part 1 of a split model)

    def __init__(
        self,
        paths: AppPaths,
        parent: QWidget | None = None,
        *,
        service: HubService | None = None,
        hardware: Hardware | None = None,
        bridge: HubBridge | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model Manager")
        self.resize(1240, 760)
        self.paths = paths
        # a bridge passed in belongs to the caller: downloads go on after the dialog closes
        self._owns_bridge = bridge is None
        if bridge is None:
            service = service or HubService(paths, environ=dict(os.environ))
            bridge = HubBridge(service, self, hardware)
        self.bridge = bridge
        self.service = bridge.service
        # replaceable in tests: ask before deleting, ask for a token
        self.confirm: Callable[[str, str], bool] = self._confirm_dialog
        self.ask_token: Callable[[str], str | None] = self._token_dialog
        self.catalog = CatalogPage(self.bridge)
        self.downloads = DownloadsPage(self.bridge, self._ask_confirm)
        self.library = LibraryPage(paths, self.bridge, self._ask_confirm)
        self.downloads_table = self.downloads.table
        self.library_table = self.library.table
        c = self.catalog  # its widgets, under the names callers and tests use
        self.search_edit, self.repo_list, self.quant_table = (
            c.search_edit,
            c.repo_list,
            c.quant_table,
        )
        self.projector_label, self.projector_box = c.projector_label, c.projector_box
        self.download_button = c.download_button

        self.tabs = QTabWidget()
        self.tabs.addTab(self.catalog, "Catalog")
        self.tabs.addTab(self.downloads, "Downloads")
        self.tabs.addTab(self.library, "Library")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.offline_box = QCheckBox("Offline (use only downloaded models)")
        self.offline_box.setChecked(self.service.offline)
        self.offline_box.toggled.connect(self._on_offline_toggled)
        token_button = QPushButton("Hugging Face token…")
        token_button.clicked.connect(lambda: self._on_token_requested(""))
        close_button = QPushButton("Close")
        close_button.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.offline_box)
        bottom.addWidget(token_button)
        bottom.addStretch(1)
        bottom.addWidget(close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        layout.addLayout(bottom)

        b = self.bridge
        c.message.connect(self.status.setText)
        c.download_queued.connect(self._on_catalog_download_queued)
        b.lookup_failed.connect(self._on_bridge_failed)
        b.download_finished.connect(self._on_bridge_finished)
        b.download_stopped.connect(self._on_bridge_stopped)
        self.library.model_chosen.connect(self.model_chosen)
        self.library.message.connect(self.status.setText)
        b.start()  # resume what was queued when Herd last closed

    # --- catalog: the page does the work; these names stay for callers and tests --------

    def show_repo(self, repo_id: str) -> None:
        """Select a curated repository: its quants are listed, the recommended one selected."""
        self.tabs.setCurrentIndex(0)
        self.catalog.show_repo(repo_id)

    def _on_search_requested(self) -> None:
        self.catalog._on_search_requested()

    @Slot(str)
    def _on_catalog_download_queued(self, title: str) -> None:
        self.status.setText(f"{title} added to the downloads.")
        self.tabs.setCurrentIndex(1)

    # --- downloads and library: what the pages leave to the dialog ------------------------

    @Slot(str, str, str)
    def _on_bridge_failed(self, what: str, message: str, hint: str) -> None:
        if what == "queue":  # the catalog reports its own look-ups
            self.status.setText(one_line(message, hint))

    @Slot(str, str)
    def _on_bridge_finished(self, key: str, path: str) -> None:
        self.status.setText(f"Downloaded and verified: {Path(path).name}")

    @Slot(str, str, str, str, bool)
    def _on_bridge_stopped(
        self, key: str, state: str, message: str, hint: str, needs_token: bool
    ) -> None:
        self.status.setText(one_line(message, hint))
        if needs_token:
            self._on_token_requested(key)

    def _on_token_requested(self, key: str) -> None:
        repo = key.split("@", 1)[0] if key else ""
        token = self.ask_token(repo)
        if not token:
            return
        try:
            self.service.tokens.set(token)
        except HerdError as exc:
            self.status.setText(exc.one_line())
            return
        self.status.setText(f"Token saved in {self.service.tokens.where}.")
        if key:
            self.bridge.resume(key)

    # the pages' actions, also reachable on the dialog (tests and callers use these names)
    def _row_of(self, key: str) -> int | None:
        return self.downloads.row_of(key)

    def _on_pause_clicked(self) -> None:
        self.downloads.pause_selected()

    def _on_resume_clicked(self) -> None:
        self.downloads.resume_selected()

    def _on_cancel_clicked(self) -> None:
        self.downloads.cancel_selected()

    def _on_load_clicked(self) -> None:
        self.library.load_selected()

    def _on_delete_clicked(self) -> None:
        self.library.delete_selected()

    # --- dialogs and closing ------------------------------------------------------------

    @Slot(bool)
    def _on_offline_toggled(self, offline: bool) -> None:
        self.service.offline = offline
        self.status.setText("Offline: only downloaded models are listed." if offline else "")

    def _ask_confirm(self, title: str, text: str) -> bool:
        return self.confirm(title, text)  # looked up at each call: tests replace it

    def _confirm_dialog(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _token_dialog(self, repo: str) -> str | None:
        why = f"{repo} is gated. " if repo else ""
        text, ok = QInputDialog.getText(
            self,
            "Hugging Face token",
            f"{why}Paste an access token (huggingface.co/settings/tokens);\n"
            "accept the model's licence on its page first.",
            QLineEdit.EchoMode.Password,
        )
        return text if ok and text.strip() else None

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Pause downloads and join the threads before the window goes (own bridge only)."""
        self._release()
        super().closeEvent(event)

    def done(self, result: int) -> None:
        """Escape or Close: the same clean-up as closing the window."""
        self._release()
        super().done(result)

    def _release(self) -> None:
        if self._owns_bridge:
            self.bridge.shutdown()
        else:  # the window's bridge goes on: only the downloads are worth its time
            self.bridge.cancel_plans()
