"""The Model Manager: catalog and search, the quant picker, the download queue, the library.

Open it with ``ModelManagerDialog(paths, parent)``; it emits ``model_chosen(path)`` with
the ``.gguf`` to load (the first part of a split model). All Hub work runs in
:class:`~app.ui.models.hub_bridge.HubBridge`. With its own bridge, closing the dialog pauses a
running download, which resumes the next time the dialog opens (or with ``herd pull``);
a window that passes in a long-lived ``bridge`` keeps downloads going while it is closed.
The Downloads and Library tabs are :class:`~app.ui.models.model_downloads.DownloadsPage` and
:class:`~app.ui.models.model_library.LibraryPage`; the catalog is the dialog's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import HerdError, one_line
from app.core.hardware.probe import Hardware
from app.core.hub.catalog import CURATED
from app.core.hub.jobs import DownloadRequest
from app.core.hub.service import HubService
from app.core.hub.verdict import Fit, Verdict, size_text
from app.core.paths import AppPaths
from app.ui.models.hub_bridge import HubBridge, QuantsResult
from app.ui.models.model_downloads import DownloadsPage
from app.ui.models.model_library import LibraryPage
from app.ui.models.model_tables import REPO_ROLE, item_at, make_item, make_table, selected_row

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
        self.resize(1100, 640)
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
        self._quants: QuantsResult | None = None
        self._planned: set[tuple[str, str]] = set()  # (repo, quant) the planner was asked

        self.downloads = DownloadsPage(self.bridge, self._ask_confirm)
        self.library = LibraryPage(paths, self.bridge, self._ask_confirm)
        self.downloads_table = self.downloads.table
        self.library_table = self.library.table

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_catalog(), "Catalog")
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
        b.quants_ready.connect(self._on_bridge_quants)
        b.quant_planned.connect(self._on_bridge_planned)
        b.search_ready.connect(self._on_bridge_search)
        b.lookup_failed.connect(self._on_bridge_failed)
        b.download_finished.connect(self._on_bridge_finished)
        b.download_stopped.connect(self._on_bridge_stopped)
        self.library.model_chosen.connect(self.model_chosen)
        self.library.message.connect(self.status.setText)
        b.start()  # resume what was queued when Herd last closed

    # --- catalog ------------------------------------------------------------------------

    def _build_catalog(self) -> QWidget:
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search the Hub for GGUF models, e.g. Llama-4-Scout")
        self.search_edit.returnPressed.connect(self._on_search_requested)
        search_button = QPushButton("Search")
        search_button.clicked.connect(self._on_search_requested)
        row = QHBoxLayout()
        row.addWidget(self.search_edit, 1)
        row.addWidget(search_button)

        self.repo_list = QListWidget()
        self.repo_list.setSpacing(3)
        self.repo_list.setAlternatingRowColors(True)
        self.repo_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.repo_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.repo_list.currentItemChanged.connect(self._on_repo_selected)
        self._show_curated()

        self.repo_title = QLabel("Choose a repository on the left.")
        self.repo_title.setWordWrap(True)
        title_font = QFont(self.repo_title.font())
        title_font.setBold(True)
        self.repo_title.setFont(title_font)
        self.quant_table = make_table(["Quant", "Size on disk", "Files", "On this machine", ""])
        self.quant_table.setWordWrap(False)
        header = self.quant_table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.quant_table.itemSelectionChanged.connect(self._on_quant_selected)
        self.projector_label = QLabel()
        self.projector_box = QCheckBox("Also download the vision projector")
        self.projector_box.setChecked(True)
        self.download_button = QPushButton("Download")
        self.download_button.setEnabled(False)
        self.download_button.clicked.connect(self._on_download_requested)
        actions = QHBoxLayout()
        actions.addWidget(self.projector_box)
        actions.addStretch(1)
        actions.addWidget(self.download_button)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.repo_title)
        rl.addWidget(self.quant_table, 1)
        rl.addWidget(self.projector_label)
        rl.addLayout(actions)

        split = QSplitter()
        split.addWidget(self.repo_list)
        split.addWidget(right)
        split.setSizes([270, 830])
        page = QWidget()
        pl = QVBoxLayout(page)
        pl.addLayout(row)
        pl.addWidget(split, 1)
        return page

    def _show_curated(self) -> None:
        self.repo_list.clear()
        for c in CURATED:
            note = f" ({c.note})" if c.note else ""
            name = c.repo_id.split("/", 1)[1]
            item = QListWidgetItem(f"Llama 4 {c.family} · {c.publisher}{note}\n{name}")
            item.setData(REPO_ROLE, c.repo_id)
            item.setToolTip(c.repo_id)
            self.repo_list.addItem(item)

    def show_repo(self, repo_id: str) -> None:
        """Select a curated repository: its quants are listed, the recommended one selected."""
        self.tabs.setCurrentIndex(0)
        for row in range(self.repo_list.count()):
            item = self.repo_list.item(row)
            if item.data(REPO_ROLE) == repo_id:
                self.repo_list.setCurrentItem(item)
                return

    @Slot()
    def _on_search_requested(self) -> None:
        query = self.search_edit.text().strip()
        if not query:
            self._show_curated()
            return
        self.status.setText(f"Searching the Hub for {query!r}…")
        self.bridge.search(query)

    @Slot(str, object)
    def _on_bridge_search(self, query: str, hits: list) -> None:
        self.repo_list.clear()
        for h in hits:
            gated = " · gated" if h.gated else ""
            item = QListWidgetItem(f"{h.repo_id}\n{h.downloads:,} downloads{gated}")
            item.setData(REPO_ROLE, h.repo_id)
            self.repo_list.addItem(item)
        self.status.setText(f"{len(hits)} GGUF repositories match {query!r}.")

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_repo_selected(self, item: QListWidgetItem | None, _prev: object = None) -> None:
        if item is None:
            return
        repo_id = item.data(REPO_ROLE)
        self.repo_title.setText(f"{repo_id}: looking up its files…")
        self.quant_table.setRowCount(0)
        self.download_button.setEnabled(False)
        self.bridge.fetch_quants(repo_id)

    @Slot(str, object)
    def _on_bridge_quants(self, repo_id: str, result: QuantsResult) -> None:
        current = self.repo_list.currentItem()
        if current is not None and current.data(REPO_ROLE) != repo_id:
            return  # an older answer
        self._quants = result
        q = result.quants
        note = " (offline: downloaded files only)" if q.from_cache else ""
        gated = " · gated: needs a token" if q.gated else ""
        self.repo_title.setText(f"{repo_id}{gated}{note}")
        self.quant_table.setRowCount(len(q.quants))
        bold = QFont(self.quant_table.font())
        bold.setBold(True)
        for row, (option, verdict) in enumerate(zip(q.quants, result.verdicts, strict=True)):
            best = row == result.best
            cells = [
                make_item(option.quant, row),
                make_item(size_text(option.size)),
                make_item(f"{option.n_parts} parts" if option.n_parts > 1 else "1 file"),
                make_item(verdict.text()),
                make_item("★ recommended" if best else ""),
            ]
            for col, cell in enumerate(cells):
                if best:
                    cell.setFont(bold)
                if verdict.fit is Fit.NO_FIT:
                    cell.setForeground(self.palette().placeholderText())
                self.quant_table.setItem(row, col, cell)
        projectors = ", ".join(p.name for p in q.projectors)
        self.projector_label.setText(f"Vision projector: {projectors}" if projectors else "")
        self.projector_box.setVisible(bool(projectors))
        if not q.quants:
            self.repo_title.setText(f"{repo_id}: no GGUF model files.")
        elif result.best is not None:
            self.quant_table.selectRow(result.best)
        self.status.setText("")

    @Slot()
    def _on_quant_selected(self) -> None:
        row = selected_row(self.quant_table)
        if row is None or self._quants is None:
            self.download_button.setEnabled(False)
            return
        option = self._quants.quants.quants[row]
        self.download_button.setText(f"Download {option.quant} ({size_text(option.size)})")
        self.download_button.setEnabled(True)
        key = (self._quants.quants.repo_id, option.quant)
        if key not in self._planned:
            self._planned.add(key)
            item_at(self.quant_table, row, 3).setToolTip(
                "Estimated from the size; asking the planner (reads the headers)…"
            )
            self.bridge.plan_quant(self._quants.quants, row)

    @Slot(str, str, object, str)
    def _on_bridge_planned(self, repo_id: str, quant: str, verdict: Verdict, reasons: str) -> None:
        if self._quants is None or self._quants.quants.repo_id != repo_id:
            return
        for row, option in enumerate(self._quants.quants.quants):
            if option.quant == quant:
                item = item_at(self.quant_table, row, 3)
                item.setText(verdict.text())
                item.setToolTip(f"The planner, from this quant's headers:\n{reasons}")

    @Slot()
    def _on_download_requested(self) -> None:
        row = selected_row(self.quant_table)
        if row is None or self._quants is None:
            return
        quants = self._quants.quants
        request = DownloadRequest.for_quant(
            quants, quants.quants[row], projector=self.projector_box.isChecked()
        )
        self.bridge.enqueue(request)
        self.status.setText(f"{request.title} added to the downloads.")
        self.tabs.setCurrentIndex(1)

    @Slot(str, str, str)
    def _on_bridge_failed(self, what: str, message: str, hint: str) -> None:
        if not what.startswith("plan "):
            self.status.setText(one_line(message, hint))
        if what.startswith("quants"):
            self.repo_title.setText(message)
        elif what.startswith("plan ") and self._quants is not None:  # keep the estimate
            quant = what.rsplit(" ", 1)[-1]
            for row, option in enumerate(self._quants.quants.quants):
                if option.quant == quant:
                    item_at(self.quant_table, row, 3).setToolTip(
                        f"Estimated from the size; the planner could not read the headers: "
                        f"{message}"
                    )
            return

    # --- downloads and library: what the pages leave to the dialog ------------------------

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
