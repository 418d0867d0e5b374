"""The Model Manager's Catalog tab: find a repository, see its card, pick a quant.

The left list holds the curated Llama 4 repositories or a Hub search's hits. Choosing one
shows its card and its quants, each with the estimate from its size; then the planner
judges every quant from its GGUF headers in the background (HubBridge), row by row, and
the recommendation follows the planner. When nothing fits, the pane says why and what to
do. Every change of repository or search starts from an empty pane: nothing of the last
repository stays on screen.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import one_line
from app.core.hub.catalog import CURATED, repo_card
from app.core.hub.client import RepoSummary
from app.core.hub.jobs import DownloadRequest
from app.core.hub.verdict import Verdict, machine_text, recommend, why_none_fits
from app.core.units import size_text
from app.ui.models import quant_table
from app.ui.models.fit_badge import RED, shade
from app.ui.models.hub_bridge import HubBridge, QuantsResult
from app.ui.models.model_tables import REPO_ROLE, selected_row
from app.ui.models.repo_card import MUTED, RepoCardView, curated_item, hit_item

CHOOSE = "Choose a repository on the left."


class CatalogPage(QWidget):
    """Curated repositories and Hub search on the left; the chosen one's card and quants."""

    message = Signal(str)  # a line for the dialog's status bar
    download_queued = Signal(str)  # the title of a download just added to the queue

    def __init__(self, bridge: HubBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self._result: QuantsResult | None = None
        self._verdicts: list[Verdict] = []
        self._best: int | None = None
        self._user_picked = False  # the person chose a row: the recommendation moves alone
        self._selecting = False  # a row is being selected by the page, not the person
        self._query = ""
        self._nothing_fits_shown = False
        self._alarm = False

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
        self.repo_list.setWordWrap(True)  # long names wrap; they are never cut short
        self.repo_list.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.repo_list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.repo_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.repo_list.setMinimumWidth(240)
        self.repo_list.currentItemChanged.connect(self._on_repo_list_current_changed)

        self.card = RepoCardView()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.RichText)
        self.notice.setVisible(False)
        self.quant_table = quant_table.make_quant_table()
        self.quant_table.itemSelectionChanged.connect(self._on_quant_table_selection_changed)
        self.footnote = QLabel()
        self.footnote.setWordWrap(True)
        self.footnote.setStyleSheet(MUTED)
        self.projector_label = QLabel()
        self.projector_label.setStyleSheet(MUTED)
        self.projector_box = QCheckBox("Also download the vision projector")
        self.projector_box.setChecked(True)
        self.download_button = QPushButton("Download")
        self.download_button.setEnabled(False)
        self.download_button.clicked.connect(self._on_download_requested)
        actions = QHBoxLayout()
        actions.addWidget(self.projector_box)
        actions.addWidget(self.projector_label, 1)
        actions.addWidget(self.download_button)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.card)
        rl.addWidget(self.notice)
        rl.addWidget(self.quant_table, 1)
        self._filler = QWidget()  # takes the table's room while there is no table
        rl.addWidget(self._filler, 1)
        rl.addWidget(self.footnote)
        rl.addLayout(actions)

        split = QSplitter()
        split.addWidget(self.repo_list)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([330, 870])
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(split, 1)

        bridge.quants_ready.connect(self._on_bridge_quants)
        bridge.quant_planned.connect(self._on_bridge_planned)
        bridge.plan_failed.connect(self._on_bridge_plan_failed)
        bridge.search_ready.connect(self._on_bridge_search)
        bridge.lookup_failed.connect(self._on_bridge_failed)
        self.show_curated()

    # --- the list -----------------------------------------------------------------------

    def show_curated(self) -> None:
        """List the repositories Herd recommends."""
        self._query = ""
        self.repo_list.clear()
        for c in CURATED:
            self.repo_list.addItem(curated_item(c))
        self._clear(CHOOSE)

    def show_repo(self, repo_id: str) -> bool:
        """Select ``repo_id`` in the list (the curated one if a search hides it)."""
        for attempt in range(2):
            for row in range(self.repo_list.count()):
                item = self.repo_list.item(row)
                if item.data(REPO_ROLE) == repo_id:
                    self.repo_list.setCurrentItem(item)
                    return True
            if attempt == 0 and self._query:
                self.show_curated()
        return False

    @Slot()
    def _on_search_requested(self) -> None:
        query = self.search_edit.text().strip()
        self.bridge.cancel_plans()
        if not query:
            self.show_curated()
            return
        self._query = query
        self.repo_list.clear()
        self._clear(f"Searching the Hub for {query!r}…")
        self.message.emit(f"Searching the Hub for {query!r}…")
        self.bridge.search(query)

    @Slot(str, object)
    def _on_bridge_search(self, query: str, hits: list[RepoSummary]) -> None:
        if query != self._query:
            return  # an older search
        self.repo_list.clear()
        for h in hits:
            self.repo_list.addItem(hit_item(h))
        found = f"{len(hits):,} GGUF repositor{'ies' if len(hits) != 1 else 'y'} match {query!r}."
        self._clear(CHOOSE if hits else f"Nothing on the Hub matches {query!r}.")
        self.message.emit(found)

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_repo_list_current_changed(
        self, item: QListWidgetItem | None, _prev: QListWidgetItem | None = None
    ) -> None:
        self.bridge.cancel_plans()
        if item is None:
            self._clear(CHOOSE)
            return
        repo_id = str(item.data(REPO_ROLE))
        self._clear(None)
        self.card.show_card(repo_card(repo_id))
        self._notice("Looking up its files…")
        self.bridge.fetch_quants(repo_id)

    def current_repo(self) -> str:
        """The repository chosen in the list ('' when none)."""
        item = self.repo_list.currentItem()
        return str(item.data(REPO_ROLE)) if item is not None else ""

    # --- the right pane -----------------------------------------------------------------

    def _clear(self, title: str | None) -> None:
        """Empty the right pane (and the card, with ``title``)."""
        self._result, self._verdicts, self._best = None, [], None
        self._user_picked = False
        self._show_table(False)
        self.projector_label.setText("")
        self.footnote.setText("")
        self.projector_box.setVisible(False)
        self.download_button.setText("Download")
        self.download_button.setEnabled(False)
        self._notice("")
        if title is not None:
            self.card.clear(title)

    def _show_table(self, shown: bool) -> None:
        if not shown:
            self.quant_table.setRowCount(0)
        self.quant_table.setVisible(shown)
        self._filler.setVisible(not shown)

    def _notice(self, text: str, *, alarm: bool = False) -> None:
        self._nothing_fits_shown = False
        self._alarm = alarm
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
        self._style_notice()

    def _style_notice(self) -> None:
        if self._alarm:
            red = shade(RED, self.palette()).name()
            self.notice.setStyleSheet(
                f"QLabel {{ border: 1px solid {red}; border-radius: 4px; padding: 6px; }}"
            )
        else:
            self.notice.setStyleSheet(MUTED)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        """Follow a theme change: the notice's border colour comes from the palette."""
        if event.type() == QEvent.Type.PaletteChange:
            self._style_notice()
        super().changeEvent(event)

    @Slot(str, object)
    def _on_bridge_quants(self, repo_id: str, result: QuantsResult) -> None:
        if repo_id != self.current_repo():
            return  # an older answer
        self._clear(None)
        q = result.quants
        self._result, self._verdicts = result, list(result.verdicts)
        self.card.show_card(repo_card(repo_id, q))
        quant_table.fill(self.quant_table, q.quants, self._verdicts)
        self._show_table(bool(q.quants))
        if result.hardware is not None and q.quants:
            self.footnote.setText(
                f"Judged for this computer: {machine_text(result.hardware)}. Speeds are "
                "estimates; the planner checks each quant from its file headers. Quality: "
                "how close the answers stay to the original model's."
            )
        projectors = ", ".join(p.name for p in q.projectors)
        self.projector_label.setText(f"({projectors})" if projectors else "")
        self.projector_box.setVisible(bool(projectors))
        if not q.quants:
            self._notice(f"{html.escape(repo_id)} has no GGUF model files.", alarm=True)
            return
        if q.from_cache:
            self._notice("Offline: only the files already downloaded are listed.")
        self._set_best(result.best)
        best = result.best if result.best is not None else 0
        order = [best] + [r for r in range(len(q.quants)) if r != best]
        self.bridge.plan_quants(q, order)
        self.message.emit("")

    @Slot(str, str, object, str)
    def _on_bridge_planned(self, repo_id: str, quant: str, verdict: Verdict, reasons: str) -> None:
        row = self._row_of(repo_id, quant)
        if row is None:
            return
        self._verdicts[row] = verdict
        quant_table.set_verdict(self.quant_table, row, verdict, reasons)
        self._refresh_best()

    @Slot(str, str, str)
    def _on_bridge_plan_failed(self, repo_id: str, quant: str, why: str) -> None:
        row = self._row_of(repo_id, quant)
        if row is not None:
            quant_table.set_unplanned(self.quant_table, row, why)

    @Slot(str, str, str)
    def _on_bridge_failed(self, what: str, message: str, hint: str) -> None:
        if what.startswith("plan "):
            return  # a bug in the planner: logged; the estimate stays
        if what.startswith("quants "):
            if what != f"quants {self.current_repo()}":
                return  # an earlier repository
            self._clear(None)
            self._notice(f"<b>{html.escape(message)}</b> {html.escape(hint)}", alarm=True)
            self.message.emit("")  # the pane says it
            return
        if what.startswith("search"):
            self._clear(message)
        self.message.emit(one_line(message, hint))

    def _row_of(self, repo_id: str, quant: str) -> int | None:
        if self._result is None or self._result.quants.repo_id != repo_id:
            return None
        names = [o.quant for o in self._result.quants.quants]
        return names.index(quant) if quant in names else None

    def _refresh_best(self) -> None:
        if self._result is None:
            return
        options = self._result.quants.quants
        sizes = [(o.size, v) for o, v in zip(options, self._verdicts, strict=True)]
        best = recommend(sizes, [o.quant for o in options])
        if best != self._best:
            self._set_best(best)

    def _set_best(self, best: int | None) -> None:
        self._best = best
        quant_table.mark_best(self.quant_table, best)
        if best is None:
            self._say_nothing_fits()
        elif self._nothing_fits_shown:
            self._notice("")
        if best is not None and not self._user_picked:
            self._selecting = True
            self.quant_table.selectRow(best)
            self._selecting = False

    def _say_nothing_fits(self) -> None:
        assert self._result is not None
        q, hardware = self._result.quants, self._result.hardware
        if hardware is None:
            self._notice("<b>Nothing here fits this computer.</b>", alarm=True)
            self._nothing_fits_shown = True
            return
        smallest = q.quants[0]
        why, what = why_none_fits(smallest.size, f"{q.repo_id} {smallest.first_file}", hardware)
        self._notice(f"<b>Nothing here fits this computer.</b> {why}<br>{what}", alarm=True)
        self._nothing_fits_shown = True

    @Slot()
    def _on_quant_table_selection_changed(self) -> None:
        row = selected_row(self.quant_table)
        if row is None or self._result is None:
            self.download_button.setEnabled(False)
            return
        if not self._selecting:
            self._user_picked = True
        option = self._result.quants.quants[row]
        self.download_button.setText(f"Download {option.quant} ({size_text(option.size)})")
        self.download_button.setEnabled(True)

    @Slot()
    def _on_download_requested(self) -> None:
        row = selected_row(self.quant_table)
        if row is None or self._result is None:
            return
        quants = self._result.quants
        request = DownloadRequest.for_quant(
            quants, quants.quants[row], projector=self.projector_box.isChecked()
        )
        self.bridge.enqueue(request)
        self.download_queued.emit(request.title)
