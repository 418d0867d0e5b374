"""The Model Manager: catalog and search, the quant picker, the download queue, the library.

Open it with ``ModelManagerDialog(paths, parent)``; it emits ``model_chosen(path)`` with
the ``.gguf`` to load (the first part of a split model). All Hub work runs in
:class:`~app.ui.hub_bridge.HubBridge`. With its own bridge, closing the dialog pauses a
running download, which resumes the next time the dialog opens (or with ``herd pull``);
a window that passes in a long-lived ``bridge`` keeps downloads going while it is closed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import HerdError
from app.core.hardware import Hardware
from app.core.hub import library
from app.core.hub.catalog import CURATED
from app.core.hub.jobs import DownloadProgress, DownloadRequest, JobState
from app.core.hub.service import HubService
from app.core.hub.verdict import Fit, size_text
from app.core.paths import AppPaths
from app.ui.hub_bridge import HubBridge, QuantsResult

REPO_ROLE = Qt.ItemDataRole.UserRole


def _table(headers: list[str]) -> QTableWidget:
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


def _item(text: str, data: object = None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if data is not None:
        item.setData(REPO_ROLE, data)
    return item


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min left"
    return f"{s // 60} min {s % 60:02d} s left" if s >= 60 else f"{s} s left"


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

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_catalog(), "Catalog")
        self.tabs.addTab(self._build_downloads(), "Downloads")
        self.tabs.addTab(self._build_library(), "Library")
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
        b.download_progress.connect(self._on_bridge_progress)
        b.download_finished.connect(self._on_bridge_finished)
        b.download_stopped.connect(self._on_bridge_stopped)
        b.queue_changed.connect(self._refresh_downloads)
        b.library_changed.connect(self._refresh_library)
        self._refresh_downloads()
        self._refresh_library()
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
        self.quant_table = _table(["Quant", "Size on disk", "Files", "On this machine", ""])
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
                _item(option.quant, row),
                _item(size_text(option.size)),
                _item(f"{option.n_parts} parts" if option.n_parts > 1 else "1 file"),
                _item(verdict.text()),
                _item("★ recommended" if best else ""),
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

    def _selected_row(self, table: QTableWidget) -> int | None:
        rows = table.selectionModel().selectedRows() if table.selectionModel() else []
        return rows[0].row() if rows else None

    @Slot()
    def _on_quant_selected(self) -> None:
        row = self._selected_row(self.quant_table)
        if row is None or self._quants is None:
            self.download_button.setEnabled(False)
            return
        option = self._quants.quants.quants[row]
        self.download_button.setText(f"Download {option.quant} ({size_text(option.size)})")
        self.download_button.setEnabled(True)
        key = (self._quants.quants.repo_id, option.quant)
        if key not in self._planned:
            self._planned.add(key)
            cell = self.quant_table.item(row, 3)
            cell.setToolTip("Estimated from the size; asking the planner (reads the headers)…")
            self.bridge.plan_quant(self._quants.quants, row)

    @Slot(str, str, object, str)
    def _on_bridge_planned(self, repo_id: str, quant: str, verdict: object, reasons: str) -> None:
        if self._quants is None or self._quants.quants.repo_id != repo_id:
            return
        for row, option in enumerate(self._quants.quants.quants):
            if option.quant == quant:
                cell = self.quant_table.item(row, 3)
                cell.setText(verdict.text())  # type: ignore[attr-defined]
                cell.setToolTip(f"The planner, from this quant's headers:\n{reasons}")

    @Slot()
    def _on_download_requested(self) -> None:
        row = self._selected_row(self.quant_table)
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
            self.status.setText(f"{message} {hint}".strip())
        if what.startswith("quants"):
            self.repo_title.setText(message)
        elif what.startswith("plan ") and self._quants is not None:  # keep the estimate
            quant = what.rsplit(" ", 1)[-1]
            for row, option in enumerate(self._quants.quants.quants):
                if option.quant == quant:
                    self.quant_table.item(row, 3).setToolTip(
                        f"Estimated from the size; the planner could not read the headers: "
                        f"{message}"
                    )
            return

    # --- downloads ----------------------------------------------------------------------

    def _build_downloads(self) -> QWidget:
        self.downloads_table = _table(["Model", "Progress", "Status"])
        self.downloads_table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.Stretch
        )
        self.downloads_table.horizontalHeader().setStretchLastSection(False)
        buttons = QHBoxLayout()
        for label, slot in (
            ("Pause", self._on_pause_clicked),
            ("Resume", self._on_resume_clicked),
            ("Cancel…", self._on_cancel_clicked),
            ("Remove from list", self._on_forget_clicked),
        ):
            button = QPushButton(label)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(self.downloads_table, 1)
        layout.addLayout(buttons)
        return page

    def _row_of(self, key: str) -> int | None:
        for row in range(self.downloads_table.rowCount()):
            if self.downloads_table.item(row, 0).data(REPO_ROLE) == key:
                return row
        return None

    def _selected_key(self) -> str | None:
        row = self._selected_row(self.downloads_table)
        return None if row is None else self.downloads_table.item(row, 0).data(REPO_ROLE)

    @Slot()
    def _refresh_downloads(self) -> None:
        entries = self.bridge.queue.entries
        self.downloads_table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            r = e.request
            self.downloads_table.setItem(row, 0, _item(f"{r.title}\n{size_text(r.total)}", r.key))
            bar = self.downloads_table.cellWidget(row, 1)
            if not isinstance(bar, QProgressBar):
                bar = QProgressBar()
                bar.setRange(0, 1000)
                self.downloads_table.setCellWidget(row, 1, bar)
            if e.state is JobState.DONE:
                bar.setValue(1000)
            status = e.state.value.capitalize()
            if e.message and e.state is not JobState.DONE:
                status = f"{status}: {e.message}"
            self.downloads_table.setItem(row, 2, _item(status))
        self.downloads_table.resizeRowsToContents()

    @Slot(object)
    def _on_bridge_progress(self, p: DownloadProgress) -> None:
        row = self._row_of(p.key)
        if row is None:
            return
        bar = self.downloads_table.cellWidget(row, 1)
        if isinstance(bar, QProgressBar):
            bar.setValue(int(p.fraction * 1000))
            bar.setFormat(f"{p.fraction * 100:.1f}%  {size_text(p.done)} of {size_text(p.total)}")
        speed = f"{p.speed_bps / 1e6:.1f} MB/s, " if p.speed_bps else ""
        name = p.filename.rsplit("/", 1)[-1]
        text = f"{p.phase.capitalize()} {name}\n{speed}{_duration(p.eta_s)}"
        self.downloads_table.setItem(row, 2, _item(text.strip()))

    @Slot(str, str)
    def _on_bridge_finished(self, key: str, path: str) -> None:
        self.status.setText(f"Downloaded and verified: {Path(path).name}")

    @Slot(str, str, str, str, bool)
    def _on_bridge_stopped(
        self, key: str, state: str, message: str, hint: str, needs_token: bool
    ) -> None:
        self.status.setText(f"{message} {hint}".strip())
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

    @Slot()
    def _on_pause_clicked(self) -> None:
        if key := self._selected_key():
            self.bridge.pause(key)

    @Slot()
    def _on_resume_clicked(self) -> None:
        if key := self._selected_key():
            self.bridge.resume(key)

    @Slot()
    def _on_cancel_clicked(self) -> None:
        key = self._selected_key()
        if key and self.confirm(
            "Cancel the download?", "The part downloaded so far will be deleted."
        ):
            self.bridge.cancel(key)

    @Slot()
    def _on_forget_clicked(self) -> None:
        if key := self._selected_key():
            self.bridge.forget(key)

    # --- library ------------------------------------------------------------------------

    def _build_library(self) -> QWidget:
        self.library_table = _table(["Model", "Quant", "Size", "Source", "Last used"])
        self.library_table.doubleClicked.connect(self._on_load_clicked)
        self.library_total = QLabel()
        buttons = QHBoxLayout()
        for label, slot in (
            ("Load", self._on_load_clicked),
            ("Show in folder", self._on_reveal_clicked),
            ("Delete…", self._on_delete_clicked),
            ("Add a file…", self._on_add_clicked),
        ):
            button = QPushButton(label)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.library_total)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(self.library_table, 1)
        layout.addLayout(buttons)
        return page

    @Slot()
    def _refresh_library(self) -> None:
        self._models = self.bridge.models()
        self.library_table.setRowCount(len(self._models))
        for row, m in enumerate(self._models):
            parts = f" ({m.n_parts} parts)" if m.n_parts > 1 else ""
            used = (
                time.strftime("%Y-%m-%d %H:%M", time.localtime(m.last_used))
                if m.last_used
                else "never"
            )
            cells = [m.name + parts, m.quant, size_text(m.size), m.source, used]
            for col, text in enumerate(cells):
                self.library_table.setItem(row, col, _item(text, row if col == 0 else None))
        total = sum(m.size for m in self._models)
        n = len(self._models)
        self.library_total.setText(f"{n} model{'s' * (n != 1)}, {size_text(total)} on disk")

    def _selected_model(self) -> library.LocalModel | None:
        row = self._selected_row(self.library_table)
        return None if row is None else self._models[row]

    @Slot()
    def _on_load_clicked(self) -> None:
        model = self._selected_model()
        if model is None:
            return
        library.record_use(self.paths, model.path)
        self.model_chosen.emit(str(model.path))
        self._refresh_library()

    @Slot()
    def _on_reveal_clicked(self) -> None:
        if model := self._selected_model():
            try:
                library.reveal(model.path)
            except HerdError as exc:
                self.status.setText(exc.one_line())

    @Slot()
    def _on_delete_clicked(self) -> None:
        model = self._selected_model()
        if model is None:
            return
        what = "forgotten (the file stays)" if model.repo_id is None else "deleted from disk"
        if not self.confirm(f"Delete {model.name}?", f"{size_text(model.size)} will be {what}."):
            return
        freed = library.delete(self.paths, model)
        self.status.setText(f"{model.name} removed; {size_text(freed)} freed.")
        self._refresh_library()

    @Slot()
    def _on_add_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Add a model", "", "GGUF models (*.gguf)")
        if name:
            try:
                library.add_file(self.paths, Path(name))
            except HerdError as exc:
                self.status.setText(exc.one_line())
            self._refresh_library()

    # --- dialogs and closing ------------------------------------------------------------

    @Slot(bool)
    def _on_offline_toggled(self, offline: bool) -> None:
        self.service.offline = offline
        self.status.setText("Offline: only downloaded models are listed." if offline else "")

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
