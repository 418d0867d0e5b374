"""The Offload & Context dialog reads plainly on every machine, down to 725 px of height.

Real widgets, offscreen, on the real Scout and Maverick tensor layouts and the recorded
hardware profiles: labelled context ticks, sizes with units, an overflow drawn as one, no
expert slider without a GPU, one story about pinned layers, no speed for a plan that cannot
load, no disk reads the window cannot do, and no caption over a bar.
"""

from __future__ import annotations

import itertools
import re

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QLabel,
    QScrollArea,
    QWidget,
)

from app.core.hardware.spec import profile
from app.core.plan.planner import Wishes
from app.core.units import size_text
from app.ui.offload.context_slider import tick_label
from app.ui.offload.memory_map import MemoryBarWidget
from app.ui.offload.offload_panel import OffloadDialog, OffloadPanel
from tests.fixtures.real_layouts import maverick_q4, scout_q4_k_m

CTX = 131_072
SCOUT_TICKS = ["2K", "4K", "8K", "16K", "32K", "64K", "128K", "256K", "512K"]
SCOUT_TICKS += ["1M", "2M", "4M", "8M", "10M"]


@pytest.fixture(scope="module")
def scout():
    """The real Scout Q4_K_M tensor layout (no file)."""
    return scout_q4_k_m()


@pytest.fixture(scope="module")
def maverick():
    """The real Maverick Q4_K_S tensor layout (no file): far beyond a 4090 and 64 GB."""
    return maverick_q4()


def _dialog(qtbot, info, machine: str, wishes: Wishes, height: int = 900) -> OffloadDialog:
    dialog = OffloadDialog(info, profile(machine), wishes)
    qtbot.addWidget(dialog)
    dialog.resize(860, height)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def _texts(widget: QWidget) -> str:
    """Every label's and button's text in ``widget``, one per line."""
    labels = [w.text() for w in widget.findChildren(QLabel) if w.isVisibleTo(widget)]
    labels += [w.text() for w in widget.findChildren(QAbstractButton) if w.isVisibleTo(widget)]
    return "\n".join(labels)


def test_context_ticks_are_labelled_from_2k_to_10m(qtbot, scout):
    dialog = _dialog(qtbot, scout, "rtx4090-64gb", Wishes(n_ctx=CTX))
    control = dialog.panel.ctx_control
    assert control.labels() == SCOUT_TICKS
    assert control.shown_labels() == SCOUT_TICKS  # all of them have room at 860 px
    xs = [control.tick_x(i) for i in range(len(SCOUT_TICKS))]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    assert tick_label(131_072) == "128K" and tick_label(1_048_576) == "1M"
    dialog.resize(640, 900)  # crowded: some labels give way, never the ends
    qtbot.waitUntil(lambda: dialog.width() == 640)
    shown = control.shown_labels()
    assert shown[0] == "2K" and shown[-1] == "10M" and len(shown) < len(SCOUT_TICKS)
    dialog.close()


def test_every_size_on_the_map_has_its_unit(qtbot, scout):
    dialog = _dialog(qtbot, scout, "m3-ultra-192gb", Wishes(n_ctx=CTX))
    for m in dialog.panel.device_maps():
        texts = m.bar.segment_texts()
        assert texts and all(re.fullmatch(r"\d+(\.\d)? (GiB|MiB)", t) for t in texts.values())
        figures = m.numbers.text().split(" · ")
        assert all(re.search(r" \d+(\.\d)? (GiB|MiB)$", f) for f in figures), figures
        assert re.search(r"GiB</b> of \d+\.\d GiB planned$", m.usage.text())
    dialog.close()


def test_an_overflow_is_drawn_and_said_as_one(qtbot, scout):
    dialog = _dialog(qtbot, scout, "cpu-64gb", Wishes(n_ctx=CTX))
    panel = dialog.panel
    assert not panel.plan.fits
    (cpu,) = panel.device_maps()
    d = panel.plan.devices[0]
    over = d.total - d.budget
    assert cpu.bar.overflow() == over > 0
    assert cpu.bar.free() == 0
    usage = cpu.usage.text()
    assert f"{size_text(d.total)} needed, {size_text(d.budget)} usable" in usage
    assert f"{size_text(over)} too much" in usage
    assert "planned" not in usage  # never "68.5 of 62.6 GiB planned"
    assert panel.legend.too_much[1].isVisibleTo(panel)
    image = cpu.bar.grab().toImage()  # the end of the bar, past the usable limit, is red
    y = image.height() // 2
    reds = [image.pixelColor(x, y) for x in range(image.width() - 40, image.width() - 4)]
    assert sum(c.red() > c.green() + 60 for c in reds) > len(reds) // 2
    dialog.close()


def test_a_plan_that_fits_has_no_overflow(qtbot, scout):
    dialog = _dialog(qtbot, scout, "rtx4090-64gb", Wishes(n_ctx=CTX))
    panel = dialog.panel
    assert panel.plan.fits
    assert all(m.bar.overflow() == 0 for m in panel.device_maps())
    assert "too much" not in _texts(dialog)
    assert not panel.legend.too_much[1].isVisibleTo(panel)
    dialog.close()


def test_no_expert_slider_without_a_gpu(qtbot, scout):
    pinned_elsewhere = Wishes(n_ctx=32_768, gpu_expert_layers=20)
    dialog = _dialog(qtbot, scout, "cpu-64gb", pinned_elsewhere)
    panel = dialog.panel
    assert not panel.expert_slider.isVisibleTo(panel)
    assert not panel.auto_button.isVisibleTo(panel)
    assert panel.no_slider_note.isVisibleTo(panel)
    assert "no GPU" in panel.no_slider_note.text()
    assert panel.wishes.gpu_expert_layers is None  # a pin with nowhere to go is dropped
    assert not any("pinned" in r for r in panel.plan.reasons)
    dialog.close()
    with_gpu = _dialog(qtbot, scout, "rtx4090-64gb", Wishes(n_ctx=CTX))
    assert with_gpu.panel.expert_slider.isVisibleTo(with_gpu.panel)
    assert not with_gpu.panel.no_slider_note.isVisibleTo(with_gpu.panel)
    with_gpu.close()


def _routed_reason(panel: OffloadPanel) -> str:
    return next(r for r in panel.plan.reasons if r.startswith("Routed experts:"))


def test_pinned_layers_are_told_the_same_way_everywhere(qtbot, scout):
    dialog = _dialog(qtbot, scout, "rtx4090-64gb", Wishes(n_ctx=CTX, gpu_expert_layers=20))
    panel = dialog.panel
    fit = panel.plan.max_gpu_expert_layers
    assert 0 < fit < 20 and not panel.plan.fits
    assert panel.expert_slider.value() == 20
    value = panel.expert_value.text()
    assert value.startswith("20 of 48") and "pinned" in value and f"only {fit} fit" in value
    reason = _routed_reason(panel)
    assert "(as pinned)" not in reason  # before: "7 of 48 ... (as pinned)" next to "20 of 48"
    assert f"you pinned 20; only {fit} fit" in reason
    assert "Press Auto" in panel.verdict.text()
    dialog.close()
    dialog = _dialog(qtbot, scout, "rtx4090-64gb", Wishes(n_ctx=CTX, gpu_expert_layers=3))
    panel = dialog.panel
    assert panel.plan.fits and panel.expert_value.text().startswith("3 of 48 · pinned")
    assert "3 of 48 MoE layers on the GPU (as pinned)" in _routed_reason(panel)
    dialog.close()


@pytest.mark.parametrize(
    ("model", "machine", "n_ctx"),
    [("maverick", "rtx4090-64gb", None), ("scout", "cpu-64gb", CTX)],
)
def test_no_speed_and_no_disk_for_a_plan_that_does_not_fit(qtbot, request, model, machine, n_ctx):
    dialog = _dialog(qtbot, request.getfixturevalue(model), machine, Wishes(n_ctx=n_ctx))
    panel = dialog.panel
    assert not panel.plan.fits and panel.plan.max_ctx == 0
    text = _texts(dialog)
    assert "tokens/s" not in text and "tok/s" not in text
    assert "does not fit" in panel.speed_label.text()
    assert "disk" not in text.lower()  # the window has no way to read weights from disk
    assert "Download models" in panel.verdict.text()  # what it offers instead
    assert not panel.load_button.isEnabled()
    dialog.close()


def test_a_plan_that_fits_predicts_its_speed(qtbot, scout):
    dialog = _dialog(qtbot, scout, "rtx4090-64gb", Wishes(n_ctx=CTX))
    tok_s = dialog.panel.plan.predicted_decode_tok_s
    assert f"{tok_s:.1f} tokens/s" in dialog.panel.speed_label.text()
    assert any(r.startswith("Predicted decode speed") for r in dialog.panel.plan.reasons)
    dialog.close()


def _leaves(dialog: OffloadDialog) -> list[QWidget]:
    """The visible widgets a person reads or uses (not their containers)."""
    kinds = (QLabel, QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox)
    kinds += (MemoryBarWidget, QScrollArea)
    found = [w for w in dialog.findChildren(QWidget) if isinstance(w, kinds)]
    found += [dialog.panel.ctx_control.ticks]
    inside = [w for w in found if any(w is not s and s.isAncestorOf(w) for s in found)]
    return [w for w in found if w.isVisibleTo(dialog) and w not in inside]


def _rect(w: QWidget, dialog: OffloadDialog) -> QRect:
    return QRect(w.mapTo(dialog, QPoint(0, 0)), w.size())


@pytest.mark.parametrize(
    ("model", "machine", "n_ctx"),
    [
        ("scout", "rtx4090-64gb", CTX),
        ("scout", "rtx4090-64gb", 10_485_760),
        ("scout", "cpu-64gb", CTX),
        ("scout", "m3-ultra-192gb", CTX),
        ("maverick", "rtx4090-64gb", None),
    ],
)
def test_the_layout_holds_at_725_px(qtbot, request, model, machine, n_ctx):
    info = request.getfixturevalue(model)
    dialog = _dialog(qtbot, info, machine, Wishes(n_ctx=n_ctx), height=725)
    assert dialog.height() <= 725
    leaves = _leaves(dialog)
    assert len(leaves) > 15
    for w in leaves:
        rect = _rect(w, dialog)
        assert dialog.rect().contains(rect), f"{w!r} is cut off: {rect}"
        need = w.heightForWidth(w.width()) if w.hasHeightForWidth() else -1
        need = min(max(need, w.minimumSizeHint().height()), w.maximumHeight())
        text = w.text() if isinstance(w, QLabel) else type(w).__name__
        assert w.height() >= need, f"{text!r} squeezed: {w.height()} < {need}"
    for a, b in itertools.combinations(leaves, 2):
        ra, rb = _rect(a, dialog), _rect(b, dialog)
        name_a = a.text() if isinstance(a, QLabel) else type(a).__name__
        name_b = b.text() if isinstance(b, QLabel) else type(b).__name__
        assert not ra.intersects(rb), f"{name_a!r} {ra} overlaps {name_b!r} {rb}"
    dialog.close()
