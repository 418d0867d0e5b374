"""The "Offload & Context" panel: where each part of the model goes, and what it costs.

A memory map per device (a stacked bar: dense weights, routed experts, KV cache, compute
buffers, free), the context length and KV type with their cost, a slider for the routed
experts kept on the GPU, the predicted decode speed, the verdict and the plan's reasons.
Every change re-plans with :func:`app.core.plan.planner.make_plan` (a few ms), coalesced by a
0 ms single-shot timer so a dragged slider plans once per event-loop pass.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.gguf.info import GGUFInfo
from app.core.hardware.probe import Hardware
from app.core.plan.kv_estimate import kv_cache, model_shape
from app.core.plan.planner import Plan, Wishes, make_plan
from app.core.settings import KVType
from app.ui.offload.memory_map import DeviceMapWidget, LegendWidget, gib

MIN_CTX = 2048
MAX_CTX = 10_485_760  # Scout's trained maximum; the slider never goes further
KV_TYPES = (KVType.F16, KVType.Q8_0, KVType.Q4_0)


def context_steps(trained: int) -> list[int]:
    """The slider's stops: powers of two from 2K, then the top (which may not be one)."""
    top = min(trained or MAX_CTX, MAX_CTX)
    steps, n = [], MIN_CTX
    while n < top:
        steps.append(n)
        n *= 2
    steps.append(top)
    return steps


def _dark(widget: QWidget) -> bool:
    return widget.palette().color(QPalette.ColorRole.Window).lightness() < 128


class OffloadPanel(QWidget):
    """Plan a model's placement and context on a machine, live, and ask to load it."""

    plan_changed = Signal(object)  # Plan, after every re-plan
    load_requested = Signal(object)  # Wishes of the current plan (the model's own)

    def __init__(
        self,
        info: GGUFInfo,
        hardware: Hardware,
        wishes: Wishes | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """Plan once for ``wishes`` (or the defaults) and show it."""
        super().__init__(parent)
        self._info = info
        self._hardware = hardware
        self._wishes = wishes or Wishes()
        self._shape = model_shape(info)
        self._steps = context_steps(info.context_length)
        self._plan = make_plan(info, hardware, self._wishes)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._build()
        self._set_context_controls(self._wishes.n_ctx or self._plan.n_ctx)
        self._show_plan(self._plan)

    # --- public ---------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        """The plan on screen."""
        return self._plan

    @property
    def wishes(self) -> Wishes:
        """What the controls ask for."""
        return self._wishes

    def device_maps(self) -> list[DeviceMapWidget]:
        """One per planned device, GPUs first, as the plan lists them."""
        return list(self._maps)

    def replan(self) -> None:
        """Plan now for the current wishes (pending coalesced re-plans are dropped)."""
        self._timer.stop()
        self._plan = make_plan(self._info, self._hardware, self._wishes)
        self._show_plan(self._plan)
        self.plan_changed.emit(self._plan)

    # --- building -------------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        head = QLabel(
            f"<b>{html.escape(self._plan.model)}</b> — plan how the model is split between"
            " GPU and system memory, and how long a context it keeps.",
            self,
        )
        head.setWordWrap(True)
        outer.addWidget(head)

        memory = QGroupBox("Memory map", self)
        mem_layout = QVBoxLayout(memory)
        self._maps = [DeviceMapWidget(memory) for _ in self._plan.devices]
        for m in self._maps:
            mem_layout.addWidget(m)
        mem_layout.addWidget(LegendWidget(self._plan.unified_memory, memory))
        outer.addWidget(memory)

        context = QGroupBox("Context", self)
        form = QFormLayout(context)
        self.ctx_slider = QSlider(Qt.Orientation.Horizontal, context)
        self.ctx_slider.setRange(0, len(self._steps) - 1)
        self.ctx_slider.setPageStep(1)
        self.ctx_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.ctx_spin = QSpinBox(context)
        self.ctx_spin.setRange(1, self._steps[-1])
        self.ctx_spin.setSingleStep(1024)
        self.ctx_spin.setGroupSeparatorShown(True)
        self.ctx_spin.setSuffix(" tokens")
        self.ctx_spin.setMinimumWidth(150)
        row = QHBoxLayout()
        row.addWidget(self.ctx_slider, 1)
        row.addWidget(self.ctx_spin)
        form.addRow("Context length:", row)
        self.kv_combo = QComboBox(context)
        for t in KV_TYPES:
            self.kv_combo.addItem(str(t), t)
        self.kv_combo.setCurrentIndex(KV_TYPES.index(self._wishes.kv_type))
        form.addRow("KV cache type:", self.kv_combo)
        self.kv_label = QLabel(context)
        self.kv_label.setWordWrap(True)
        form.addRow("KV cache:", self.kv_label)
        outer.addWidget(context)

        experts = QGroupBox("Routed experts", self)
        eform = QFormLayout(experts)
        self.expert_slider = QSlider(Qt.Orientation.Horizontal, experts)
        self.expert_slider.setRange(0, max(self._plan.n_moe_layers, 0))
        self.expert_slider.setEnabled(self._plan.n_moe_layers > 0)
        self.expert_value = QLabel(experts)
        self.expert_value.setMinimumWidth(200)
        self.auto_button = QPushButton("Auto", experts)
        self.auto_button.setToolTip("Let the planner put as many expert layers on the GPU as fit")
        erow = QHBoxLayout()
        erow.addWidget(self.expert_slider, 1)
        erow.addWidget(self.expert_value)
        erow.addWidget(self.auto_button)
        eform.addRow("Expert layers on GPU:", erow)
        self.speed_label = QLabel(experts)
        eform.addRow("Predicted decode:", self.speed_label)
        outer.addWidget(experts)

        self.verdict = QLabel(self)
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.fit_button = QPushButton(self)
        vrow = QHBoxLayout()
        vrow.addWidget(self.verdict, 1)
        vrow.addWidget(self.fit_button, 0, Qt.AlignmentFlag.AlignTop)
        outer.addLayout(vrow)

        reasons_box = QGroupBox("Why", self)
        rlayout = QVBoxLayout(reasons_box)
        self.reasons = QLabel(reasons_box)
        self.reasons.setWordWrap(True)
        self.reasons.setTextFormat(Qt.TextFormat.RichText)
        self.reasons.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.reasons.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        scroll = QScrollArea(reasons_box)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.reasons)
        scroll.setMinimumHeight(140)
        rlayout.addWidget(scroll)
        outer.addWidget(reasons_box, 1)

        self.load_button = QPushButton("Load with this plan", self)
        self.load_button.setDefault(True)
        brow = QHBoxLayout()
        brow.addStretch(1)
        brow.addWidget(self.load_button)
        outer.addLayout(brow)

        self.ctx_slider.valueChanged.connect(self._on_ctx_slider_changed)
        self.ctx_spin.valueChanged.connect(self._on_ctx_spin_changed)
        self.kv_combo.currentIndexChanged.connect(self._on_kv_combo_changed)
        self.expert_slider.valueChanged.connect(self._on_expert_slider_changed)
        self.auto_button.clicked.connect(self._on_auto_button_clicked)
        self.fit_button.clicked.connect(self._on_fit_button_clicked)
        self.load_button.clicked.connect(self._on_load_button_clicked)

    # --- showing --------------------------------------------------------------------

    def _show_plan(self, plan: Plan) -> None:
        gpu_total = sum(d.total for d in plan.devices if d.kind == "gpu")
        for m, d in zip(self._maps, plan.devices, strict=True):
            shared = gpu_total if plan.unified_memory and d.kind == "cpu" else 0
            m.show_device(d, shared)
        if self._wishes.n_ctx is None:
            self._set_context_controls(plan.n_ctx)
        self._show_kv(plan)
        self._show_experts(plan)
        self._show_verdict(plan)
        items = "".join(f"<li>{html.escape(r)}</li>" for r in plan.reasons)
        self.reasons.setText(f"<ul style='margin-left:-20px'>{items}</ul>")
        self.load_button.setEnabled(plan.fits)

    def _set_context_controls(self, n_ctx: int) -> None:
        index = max((i for i, s in enumerate(self._steps) if s <= n_ctx), default=0)
        for w, v in ((self.ctx_slider, index), (self.ctx_spin, n_ctx)):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)

    def _show_kv(self, plan: Plan) -> None:
        n_ubatch = self._wishes.n_ubatch
        for i, t in enumerate(KV_TYPES):
            cost = kv_cache(self._shape, plan.n_ctx, t, t, n_ubatch).total
            self.kv_combo.setItemText(i, f"{t}  —  {gib(cost)} GiB at this context")
        self.kv_label.setText(
            f"<b>{gib(plan.kv_bytes)} GiB</b> for {plan.n_ctx:,} tokens ({plan.type_k}),"
            f" with swa_full off. With swa_full on (the full-size window cache) it would"
            f" cost {gib(plan.kv_full_bytes)} GiB."
        )

    def _show_experts(self, plan: Plan) -> None:
        pinned = self._wishes.gpu_expert_layers
        value = len(plan.gpu_expert_layers) if pinned is None else pinned
        self.expert_slider.blockSignals(True)
        self.expert_slider.setValue(value)
        self.expert_slider.blockSignals(False)
        how = "auto" if pinned is None else "pinned"
        self.expert_value.setText(
            f"{value} of {plan.n_moe_layers} ({how}; up to {plan.max_gpu_expert_layers} fit)"
        )
        self.auto_button.setEnabled(pinned is not None)
        n_cpu = len(plan.cpu_expert_layers)
        on_gpu = any(d.kind == "gpu" for d in plan.devices)
        if not plan.n_moe_layers:
            where = "a dense model: every weight is read for every token"
        elif not on_gpu:
            where = "every weight is read from system RAM"
        elif n_cpu:
            where = f"the experts of {n_cpu} layers are read from system RAM"
        else:
            where = "every expert is read from GPU memory"
        self.speed_label.setText(
            f"about <b>{plan.predicted_decode_tok_s:.1f} tokens/s</b>; {where}"
        )

    def _show_verdict(self, plan: Plan) -> None:
        good, bad = ("#66bb6a", "#ef5350") if _dark(self) else ("#2e7d32", "#c62828")
        if plan.fits:
            text = f"<b style='color:{good}'>✔ Fits.</b> Up to {plan.max_ctx:,} tokens would fit."
        else:
            first = plan.reasons[0] if plan.reasons else "Does not fit."
            first = first.removeprefix("Does not fit:").strip()
            if not plan.max_ctx:
                first += " No context fits with these settings."
            elif f"{plan.max_ctx:,}" not in first:
                first += f" The largest context that fits is {plan.max_ctx:,} tokens."
            text = f"<b style='color:{bad}'>✘ Does not fit:</b> {html.escape(first)}"
        self.verdict.setText(text)
        can_fit = not plan.fits and plan.max_ctx >= 1
        self.fit_button.setText(f"Use {plan.max_ctx:,} tokens")
        self.fit_button.setVisible(can_fit)

    # --- slots ----------------------------------------------------------------------

    def _wish(self, **changes: Any) -> None:  # fields of Wishes (replace refuses others)
        self._wishes = dataclasses.replace(self._wishes, **changes)
        self._timer.start()

    def _on_timer_timeout(self) -> None:
        self.replan()

    def _on_ctx_slider_changed(self, index: int) -> None:
        n_ctx = self._steps[index]
        self.ctx_spin.blockSignals(True)
        self.ctx_spin.setValue(n_ctx)
        self.ctx_spin.blockSignals(False)
        self._wish(n_ctx=n_ctx)

    def _on_ctx_spin_changed(self, value: int) -> None:
        index = max((i for i, s in enumerate(self._steps) if s <= value), default=0)
        self.ctx_slider.blockSignals(True)
        self.ctx_slider.setValue(index)
        self.ctx_slider.blockSignals(False)
        self._wish(n_ctx=value)

    def _on_kv_combo_changed(self, index: int) -> None:
        self._wish(kv_type=KV_TYPES[index])

    def _on_expert_slider_changed(self, value: int) -> None:
        self._wish(gpu_expert_layers=value)

    def _on_auto_button_clicked(self) -> None:
        self._wish(gpu_expert_layers=None)

    def _on_fit_button_clicked(self) -> None:
        n_ctx = self._plan.max_ctx
        self._set_context_controls(n_ctx)
        self._wish(n_ctx=n_ctx)

    def _on_load_button_clicked(self) -> None:
        if self._plan.fits:
            # the wishes, not the plan's settings: the load job plans them again on the
            # machine as it is then, and they are kept with this model
            self.load_requested.emit(self._wishes)


class OffloadDialog(QDialog):
    """The panel in a dialog; accepted when Load is pressed."""

    load_requested = Signal(object)  # Wishes

    def __init__(
        self,
        info: GGUFInfo,
        hardware: Hardware,
        wishes: Wishes | None = None,
        parent: QWidget | None = None,
        in_use: str = "",
    ) -> None:
        """Wrap an :class:`OffloadPanel` with a Close button.

        ``in_use``: the plan the model is loaded with now, in one line ("" when none).
        """
        super().__init__(parent)
        self.setWindowTitle(f"Offload & Context: {info.path.name}")
        self.panel = OffloadPanel(info, hardware, wishes, self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        layout = QVBoxLayout(self)
        self.in_use_label = QLabel(
            f"Loaded now with this {in_use[0].lower()}{in_use[1:]}. The settings below are "
            "kept with this model only."
            if in_use
            else "This model is not loaded. The settings below are kept with this model only.",
            self,
        )
        self.in_use_label.setWordWrap(True)
        self.in_use_label.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.in_use_label)
        layout.addWidget(self.panel)
        layout.addWidget(buttons)
        buttons.rejected.connect(self.reject)
        self.panel.load_requested.connect(self._on_panel_load_requested)
        self.resize(860, 900)

    def _on_panel_load_requested(self, settings: object) -> None:
        self.load_requested.emit(settings)
        self.accept()
