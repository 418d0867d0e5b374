"""The Model Manager's catalog: repository cards, fit badges, quality, every row planned.

Real widgets offscreen against the local Hub server (real huggingface_hub), as a person
would use them: choose a repository, wait for the background work, read the pane.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from app.core.hardware.probe import Backend, Device, Hardware
from app.core.hub.catalog import CURATED
from app.core.hub.service import HubService
from app.core.hub.verdict import Fit, Verdict
from app.core.paths import AppPaths
from app.ui.models import quant_table
from app.ui.models.fit_badge import AMBER, GREEN, RED
from app.ui.models.model_manager import ModelManagerDialog
from app.ui.models.quant_table import CHECKING, CONTEXT, FIT, PICK, QUALITY, QUANT
from app.ui.theme import dark_palette, light_palette
from tests.hub.hub_repos import HubFile, HubRepo, scout_repo, showcase_repo
from tests.hub.hub_server import FakeHub

GiB = 1 << 30
TIMEOUT_MS = 15_000
SHOWCASE = "unsloth/Llama-4-Scout-17B-16E-Instruct-GGUF"
MISSING = "bartowski/meta-llama_Llama-4-Scout-17B-16E-Instruct-GGUF"  # not on the server


def _pc(vram_gib: float, ram_gib: float, gpu: str = "NVIDIA GeForce RTX 4090") -> Hardware:
    gpus = ()
    if vram_gib:
        v = int(vram_gib * GiB)
        gpus = (Device("CUDA0", Backend.CUDA, gpu, v, v),)
    return Hardware(gpus, int(ram_gib * GiB), int(ram_gib * GiB), 16)


RTX4090_64 = _pc(24, 64)


@pytest.fixture(scope="module")
def hub_module() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        hub.add(scout_repo())
        hub.add(showcase_repo())
        yield hub


@pytest.fixture
def open_dialog(qtbot, hub_module, tmp_path) -> Iterator[Callable[..., ModelManagerDialog]]:
    """Opens a Model Manager for a machine; every one opened is closed at the end."""
    hub_module.reset()
    opened: list[ModelManagerDialog] = []

    def make(hardware: Hardware = RTX4090_64) -> ModelManagerDialog:
        paths = AppPaths.under(tmp_path / f"herd{len(opened)}").ensure()
        service = HubService(paths, endpoint=hub_module.endpoint, token=False)
        dlg = ModelManagerDialog(paths, None, service=service, hardware=hardware)
        qtbot.addWidget(dlg)
        dlg.show()
        opened.append(dlg)
        return dlg

    yield make
    for dlg in opened:
        dlg.close()


def _column(dlg: ModelManagerDialog, column: int) -> list[str]:
    table = dlg.quant_table
    return [table.item(r, column).text() for r in range(table.rowCount())]


def _choose(qtbot, dlg: ModelManagerDialog, repo_id: str, *, planned: bool = True) -> None:
    with qtbot.waitSignal(dlg.bridge.quants_ready, timeout=TIMEOUT_MS):
        dlg.show_repo(repo_id)
    if planned:  # every row's planner has answered (a verdict, or why not)
        qtbot.waitUntil(lambda: CHECKING not in _column(dlg, CONTEXT), timeout=TIMEOUT_MS)


def test_the_card_shows_parameters_licence_vision_and_downloads(qtbot, open_dialog):
    dlg = open_dialog()
    _choose(qtbot, dlg, SHOWCASE, planned=False)
    card = dlg.catalog.card
    assert card.title.text() == "Llama 4 Scout · unsloth"
    assert card.repo_id.text() == SHOWCASE
    facts = card.facts.text()
    assert "109B total, 17B active, 16 experts" in facts
    assert "Llama 4 Community License" in facts  # license: other, license_name: llama4
    assert "48,213 downloads last month" in facts
    assert card.vision_badge.isVisible() and card.vision_badge.text() == "vision"
    assert not card.gated_badge.isVisible()


def test_every_row_gets_the_planners_verdict_not_only_the_selected_one(
    qtbot, open_dialog, hub_module, model_cache_dir
):
    from tests.fixtures import real_layouts

    if not real_layouts.sparse_files_work(model_cache_dir):
        pytest.skip("this file system does not keep sparse files")
    stem = "Llama-4-Scout-17B-16E-Instruct"
    layouts = {"IQ2_XXS": real_layouts.SCOUT_IQ2, "Q4_K_M": real_layouts.SCOUT_Q4_K_M}
    files = [
        HubFile(
            f"{stem}-{q}.gguf",
            path=real_layouts.ensure_header_only(layout, model_cache_dir),
            sha256="ab" * 32,
        )
        for q, layout in layouts.items()
    ]
    repo = hub_module.add(HubRepo("herd-test/Two-Real-Scouts-GGUF", {f.name: f for f in files}))
    dlg = open_dialog()
    dlg.search_edit.setText("two-real")
    with qtbot.waitSignal(dlg.bridge.search_ready, timeout=TIMEOUT_MS):
        dlg._on_search_requested()
    _choose(qtbot, dlg, repo.repo_id)
    assert _column(dlg, QUANT) == ["IQ2_XXS", "Q4_K_M"]
    table = dlg.quant_table
    for row in range(2):
        assert table.item(row, CONTEXT).text() == "32,768 tokens"  # the planner's context
        assert "The planner, from this quant's headers" in table.item(row, FIT).toolTip()


def _pill_colours(image: QImage, x0: int, x1: int, y: int) -> set[str]:
    return {image.pixelColor(x, y).name() for x in range(x0, x1)}


@pytest.mark.parametrize("palette", [light_palette, dark_palette], ids=["light", "dark"])
def test_fit_badges_have_their_words_and_colours(qtbot, palette):
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    before = app.palette()
    app.setPalette(palette())
    try:
        table = quant_table.make_quant_table()
        qtbot.addWidget(table)
        verdicts = [
            Verdict(Fit.ALL_GPU, 41.6),
            Verdict(Fit.EXPERTS_CPU, 11.2),
            Verdict(Fit.NO_FIT, 0.0),
        ]
        options = showcase_quants()[:3]
        quant_table.fill(table, options, verdicts)
        table.resize(900, 200)
        table.show()
        qtbot.waitExposed(table)
        assert _texts(table, FIT) == [
            "fits on GPU, ~42 tok/s",
            "experts in RAM, ~11 tok/s",
            "does not fit",
        ]
        image = table.viewport().grab().toImage()
        dark = palette is dark_palette
        for row, colours in enumerate((GREEN, AMBER, RED)):
            rect = table.visualItemRect(table.item(row, FIT))
            seen = _pill_colours(image, rect.left(), rect.right(), rect.center().y())
            want = QColor(colours[1] if dark else colours[0]).name()
            assert want in seen, (row, want, seen)  # the pill's outline and text
    finally:
        app.setPalette(before)


def showcase_quants():
    from app.core.hub.catalog import group_quants
    from app.core.hub.client import RemoteFile, RepoListing

    names = ["UD-IQ1_S", "Q4_K_M", "Q8_0"]
    files = tuple(
        RemoteFile(f"Scout-{n}.gguf", (i + 1) * 30 * GiB, None) for i, n in enumerate(names)
    )
    return group_quants(RepoListing(SHOWCASE, "c" * 40, files)).quants


def _texts(table, column: int) -> list[str]:
    return [table.item(r, column).text() for r in range(table.rowCount())]


def test_each_quant_has_a_quality_hint(qtbot, open_dialog):
    dlg = open_dialog()
    _choose(qtbot, dlg, SHOWCASE, planned=False)
    hints = dict(zip(_column(dlg, QUANT), _column(dlg, QUALITY), strict=True))
    assert hints["UD-IQ1_S"] == "very low — answers suffer"
    assert hints["UD-IQ2_XXS"] == "low" and hints["UD-Q2_K_XL"] == "low"
    assert hints["UD-Q3_K_XL"] == "fair"
    assert hints["Q4_K_M"] == hints["UD-Q4_K_XL"] == hints["Q5_K_M"] == "good"
    assert hints["Q6_K"] == hints["Q8_0"] == "near-lossless"
    iq1 = _column(dlg, QUANT).index("UD-IQ1_S")
    red = QColor(RED[0]).name()
    assert dlg.quant_table.item(iq1, QUALITY).foreground().color().name() == red


def test_the_recommendation_is_not_1_bit_when_a_real_quant_runs_usable(qtbot, open_dialog):
    # a 32 GB GPU holds the 1-bit quant whole (fast), while Q4 runs with experts in RAM
    dlg = open_dialog(_pc(32, 96, "NVIDIA GeForce RTX 5090"))
    _choose(qtbot, dlg, SHOWCASE)
    table = dlg.quant_table
    picks = _column(dlg, PICK)
    best = picks.index("★ recommended")
    iq1 = _column(dlg, QUANT).index("UD-IQ1_S")
    assert table.item(iq1, FIT).text().startswith("fits on GPU")  # the tempting one
    assert _column(dlg, QUANT)[best] not in {"UD-IQ1_S", "UD-IQ2_XXS"}
    assert _column(dlg, QUALITY)[best] in {"good", "near-lossless"}
    speed = float(table.item(best, FIT).text().split("~")[1].split()[0])
    assert speed >= 10  # and it is a chatting speed
    assert table.selectionModel().selectedRows()[0].row() == best


def test_the_right_pane_is_emptied_when_a_repository_fails(qtbot, open_dialog):
    dlg = open_dialog()
    _choose(qtbot, dlg, SHOWCASE, planned=False)
    assert dlg.quant_table.rowCount() and dlg.projector_label.text()
    with qtbot.waitSignal(dlg.bridge.lookup_failed, timeout=TIMEOUT_MS):
        dlg.show_repo(MISSING)
    page = dlg.catalog
    assert dlg.quant_table.rowCount() == 0 and not dlg.quant_table.isVisible()
    assert dlg.projector_label.text() == "" and not dlg.projector_box.isVisible()
    assert not dlg.download_button.isEnabled() and dlg.download_button.text() == "Download"
    assert page.card.title.text() == "Llama 4 Scout · bartowski"  # the failed one, not the last
    assert "was not found" in page.notice.text() and page.notice.isVisible()
    assert page.footnote.text() == ""


def test_the_right_pane_is_emptied_by_a_new_search(qtbot, open_dialog):
    dlg = open_dialog()
    _choose(qtbot, dlg, SHOWCASE, planned=False)
    dlg.search_edit.setText("gated")
    with qtbot.waitSignal(dlg.bridge.search_ready, timeout=TIMEOUT_MS):
        dlg._on_search_requested()
    page = dlg.catalog
    assert dlg.repo_list.count() == 0  # the local server has no gated repo here
    assert dlg.quant_table.rowCount() == 0 and not dlg.quant_table.isVisible()
    assert dlg.projector_label.text() == "" and not dlg.download_button.isEnabled()
    assert "Nothing on the Hub matches 'gated'" in page.card.title.text()
    assert not page.card.repo_id.isVisible()


def test_names_are_whole_at_1280_pixels(qtbot, open_dialog):
    dlg = open_dialog()
    dlg.resize(1280, 800)
    _choose(qtbot, dlg, SHOWCASE)
    listing = dlg.repo_list
    assert listing.textElideMode().name == "ElideNone" and listing.wordWrap()
    metrics = listing.fontMetrics()
    assert listing.count() == len(CURATED)
    for i in range(listing.count()):
        item = listing.item(i)
        room = listing.visualItemRect(item).width()
        for line in item.text().splitlines():
            assert metrics.horizontalAdvance(line) <= room, (line, room)
    table = dlg.quant_table
    header = table.horizontalHeader()
    assert header.length() <= table.viewport().width()  # no column squeezed, no scrolling
    for column in range(table.columnCount() - 1):
        assert table.columnWidth(column) >= table.sizeHintForColumn(column), column
    assert "UD-Q4_K_XL" in _column(dlg, QUANT)


def test_when_nothing_fits_it_says_why_and_what_to_do(qtbot, open_dialog):
    dlg = open_dialog(_pc(0, 16))  # a 16 GB laptop without a GPU
    _choose(qtbot, dlg, SHOWCASE)
    assert set(_column(dlg, FIT)) == {"does not fit"}
    assert "★ recommended" not in _column(dlg, PICK)
    notice = dlg.catalog.notice
    assert notice.isVisible()
    text = notice.text()
    assert "Nothing here fits this computer" in text
    assert "needs about" in text and "16.0 GiB of RAM" in text  # why, in numbers
    assert "more memory" in text and "Close other programs" in text  # what to do


def test_the_footnote_names_the_machine(qtbot, open_dialog):
    dlg = open_dialog()
    _choose(qtbot, dlg, SHOWCASE, planned=False)
    assert "NVIDIA GeForce RTX 4090 (24.0 GiB free) and 64.0 GiB of RAM free" in (
        dlg.catalog.footnote.text()
    )


def test_first_run_hint_still_opens_a_repository(qtbot, open_dialog):
    dlg = open_dialog()
    dlg.tabs.setCurrentIndex(2)
    with qtbot.waitSignal(dlg.bridge.quants_ready, timeout=TIMEOUT_MS):
        dlg.show_repo(SHOWCASE)
    assert dlg.tabs.currentIndex() == 0
    assert dlg.repo_list.currentItem().toolTip() == SHOWCASE
    assert Path(dlg.catalog.current_repo()).name == SHOWCASE.split("/")[1]


def test_a_long_search_hit_wraps_instead_of_being_cut(qtbot, open_dialog, hub_module):
    long_id = "herd-test/meta-llama_Llama-4-Maverick-17B-128E-Instruct-abliterated-i1-GGUF"
    hub_module.add(scout_repo(long_id))
    dlg = open_dialog()
    dlg.resize(1280, 800)
    dlg.search_edit.setText("abliterated")
    with qtbot.waitSignal(dlg.bridge.search_ready, timeout=TIMEOUT_MS):
        dlg._on_search_requested()
    listing = dlg.repo_list
    item = listing.item(0)
    assert item.text().splitlines()[0] == long_id  # the whole name, no "…"
    metrics = listing.fontMetrics()
    room = listing.visualItemRect(item)
    assert metrics.horizontalAdvance(long_id) > room.width()  # too wide for one line
    assert room.height() >= 3 * metrics.lineSpacing()  # so it takes two, plus the details
