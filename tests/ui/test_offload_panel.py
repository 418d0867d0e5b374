"""The Offload & Context panel on the real Scout Q4_K_M layout and an RTX 4090 + 64 GB."""

from __future__ import annotations

import pytest

from app.core.hardware.spec import profile
from app.core.plan.planner import Wishes, make_plan
from app.core.settings import KVType
from app.core.units import size_text
from app.ui.offload.context_slider import context_steps
from app.ui.offload.offload_panel import OffloadDialog, OffloadPanel
from tests.fixtures.real_layouts import scout_q4_k_m

CTX = 131_072


@pytest.fixture(scope="module")
def scout():
    """The real Scout Q4_K_M tensor layout (no file)."""
    return scout_q4_k_m()


@pytest.fixture
def panel(qtbot, scout):
    """The panel at 128K tokens on the 4090 profile."""
    widget = OffloadPanel(scout, profile("rtx4090-64gb"), Wishes(n_ctx=CTX))
    qtbot.addWidget(widget)
    return widget


def _change(qtbot, panel, action) -> None:
    """Do ``action`` and wait for the coalesced re-plan."""
    with qtbot.waitSignal(panel.plan_changed, timeout=2000):
        action()


def test_context_steps_are_powers_of_two_up_to_the_trained_maximum():
    steps = context_steps(10_485_760)
    assert steps[0] == 2048 and steps[-2] == 8_388_608 and steps[-1] == 10_485_760
    assert context_steps(8192) == [2048, 4096, 8192]
    assert context_steps(20_000_000)[-1] == 10_485_760


def test_bars_show_the_plans_bytes(panel, scout):
    expected = make_plan(scout, profile("rtx4090-64gb"), Wishes(n_ctx=CTX))
    assert panel.plan == expected
    maps = panel.device_maps()
    assert [m.title.text().split("</b>")[0] for m in maps] == ["<b>CUDA0", "<b>CPU"]
    for m, d in zip(maps, expected.devices, strict=True):
        parts = m.bar.parts()
        for key in ("weights", "experts", "kv", "compute"):
            assert parts.get(key, 0) == getattr(d, key)
        assert parts["free"] == d.capacity - d.total
        text = m.numbers.text()
        assert f"experts {size_text(d.experts)}" in text
        assert (f"KV {size_text(d.kv)}" in text) == (
            d.kv > 0
        )  # a part that is not there is not named
        assert f"usable {size_text(d.budget)}" in text
        assert f"{size_text(d.total)}</b> of {size_text(d.capacity)} planned" in m.usage.text()
    assert panel.ctx_spin.value() == CTX
    assert panel.load_button.isEnabled()


def test_expert_slider_replans_speed_and_cpu_layers(qtbot, panel):
    before = panel.plan
    assert panel.expert_slider.value() == len(before.gpu_expert_layers) > 0
    _change(qtbot, panel, lambda: panel.expert_slider.setValue(2))
    after = panel.plan
    assert panel.wishes.gpu_expert_layers == 2
    assert len(after.gpu_expert_layers) == 2
    assert len(after.cpu_expert_layers) > len(before.cpu_expert_layers)
    assert after.predicted_decode_tok_s < before.predicted_decode_tok_s
    assert f"{after.predicted_decode_tok_s:.1f} tokens/s" in panel.speed_label.text()
    assert "pinned" in panel.expert_value.text()
    _change(qtbot, panel, panel.auto_button.click)
    assert panel.wishes.gpu_expert_layers is None
    assert panel.plan.gpu_expert_layers == before.gpu_expert_layers


def test_q8_0_kv_lowers_the_kv_figure(qtbot, panel):
    f16 = panel.plan.kv_bytes
    assert "f16" in panel.kv_combo.itemText(0) and "GiB" in panel.kv_combo.itemText(1)
    _change(qtbot, panel, lambda: panel.kv_combo.setCurrentIndex(1))
    assert panel.plan.type_k is KVType.Q8_0
    assert panel.plan.kv_bytes < f16
    assert size_text(panel.plan.kv_bytes) in panel.kv_label.text()
    assert size_text(panel.plan.kv_full_bytes) in panel.kv_label.text()
    cuda = panel.device_maps()[0].bar.parts()
    assert cuda["kv"] == panel.plan.devices[0].kv < f16


def test_too_long_a_context_is_refused_with_the_largest_that_fits(qtbot, panel):
    _change(qtbot, panel, lambda: panel.ctx_slider.setValue(panel.ctx_slider.maximum()))
    plan = panel.plan
    assert panel.ctx_spin.value() == 10_485_760
    assert not plan.fits and plan.max_ctx > 0
    assert not panel.load_button.isEnabled()
    assert "Does not fit" in panel.verdict.text()
    assert f"{plan.max_ctx:,}" in panel.verdict.text()
    assert not panel.fit_button.isHidden()
    _change(qtbot, panel, panel.fit_button.click)
    assert panel.plan.fits and panel.load_button.isEnabled()
    assert panel.ctx_spin.value() == plan.max_ctx


def test_load_emits_the_wishes_that_give_this_plan(qtbot, panel, scout):
    with qtbot.waitSignal(panel.load_requested, timeout=1000) as blocker:
        panel.load_button.click()
    wishes = blocker.args[0]
    assert isinstance(wishes, Wishes)  # the model's wishes; the load job plans them again
    assert wishes == panel.wishes
    again = make_plan(scout, profile("rtx4090-64gb"), wishes).to_load_settings()
    assert again.tensor_overrides == panel.plan.tensor_overrides != ()
    assert again.swa_full is False
    assert again.n_ctx == panel.plan.n_ctx


def test_unified_memory_shows_the_gpus_share_of_ram(qtbot, scout):
    widget = OffloadPanel(scout, profile("m3-ultra-192gb"), Wishes(n_ctx=CTX))
    qtbot.addWidget(widget)
    gpu, cpu = widget.plan.devices
    parts = widget.device_maps()[1].bar.parts()
    assert parts["shared"] == gpu.total
    assert parts["free"] == cpu.capacity - cpu.total - gpu.total
    assert widget.plan.cpu_expert_layers == ()


def test_dialog_accepts_on_load(qtbot, scout):
    dialog = OffloadDialog(scout, profile("rtx4090-64gb"), Wishes(n_ctx=CTX))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.load_requested, timeout=1000):
        dialog.panel.load_button.click()
    assert dialog.result() == OffloadDialog.DialogCode.Accepted
