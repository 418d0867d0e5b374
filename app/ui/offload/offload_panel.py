"""The "Offload & Context" panel: where each part of the model goes, and what it costs.

A memory map per device (a stacked bar: dense weights, routed experts, KV cache, compute
buffers, free; an overflow drawn as one), the context length on a labelled slider and the
KV type with their cost, a slider for the routed experts kept on the GPU (only where there
is a GPU), the predicted decode speed (only for a plan that fits), the plan's reasons, and
the verdict next to Load. Every change re-plans with :func:`app.core.plan.planner.make_plan`
(a few ms), coalesced by a 0 ms single-shot timer so a dragged slider plans once per
event-loop pass. The layout holds at 725 px of height (a 1280 x 800 screen): every line
above the reasons is one line high, and the reasons scroll.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
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
from app.core.hardware.workers import Worker
from app.core.plan.kv_estimate import kv_cache, model_shape
from app.core.plan.planner import Plan, Wishes, make_plan
from app.core.settings import KVType
from app.core.units import count_text, size_text
from app.ui.offload import panel_words as words
from app.ui.offload.context_slider import ContextSlider, context_steps
from app.ui.offload.memory_map import DeviceMapWidget, LegendWidget, verdict_colors
from app.ui.offload.probe_dialog import ProbeSetup, attach_probe
from app.ui.offload.workers_list import WorkersList

KV_TYPES = (KVType.F16, KVType.Q8_0, KVType.Q4_0)
DIALOG_SIZE = (860, 900)
TITLE_BAR = 48  # room left for the window's title bar and frame when sizing to a screen


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
        self._workers: tuple[Worker, ...] = ()  # asked in the Workers list (workers_list)
        self._plan = make_plan(info, hardware, self._wishes)
        if not words.has_gpu(self._plan) and self._wishes.gpu_expert_layers is not None:
            # no GPU to pin them on (the wish came from another machine), and no slider
            self._wishes = dataclasses.replace(self._wishes, gpu_expert_layers=None)
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
        self._plan = make_plan(self._info, self._hardware, self._wishes, self._workers)
        self._show_plan(self._plan)
        self.plan_changed.emit(self._plan)

    # --- building -------------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        head = QLabel(
            f"<b>{html.escape(self._plan.model)}</b>: which parts go to the GPU and which to"
            " system memory, and how long a context it keeps.",
            self,
        )
        head.setWordWrap(True)
        outer.addWidget(head)
        outer.addWidget(self._build_memory())
        self.workers_list = WorkersList(self)
        self.workers_list.workers_changed.connect(self._on_workers_list_workers_changed)
        outer.addWidget(self.workers_list)
        outer.addWidget(self._build_context())
        outer.addWidget(self._build_experts())
        outer.addWidget(self._build_reasons(), 1)

        self.verdict = QLabel(self)
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.fit_button = QPushButton(self)
        self.load_button = QPushButton("Load with this plan", self)
        self.load_button.setDefault(True)
        self.button_box = QDialogButtonBox(self)
        self.button_box.addButton(self.load_button, QDialogButtonBox.ButtonRole.AcceptRole)
        bottom = QHBoxLayout()
        bottom.addWidget(self.verdict, 1)
        bottom.addWidget(self.fit_button, 0, Qt.AlignmentFlag.AlignVCenter)
        bottom.addWidget(self.button_box, 0, Qt.AlignmentFlag.AlignVCenter)
        outer.addLayout(bottom)

        self.ctx_slider.valueChanged.connect(self._on_ctx_slider_changed)
        self.ctx_spin.valueChanged.connect(self._on_ctx_spin_changed)
        self.kv_combo.currentIndexChanged.connect(self._on_kv_combo_changed)
        self.expert_slider.valueChanged.connect(self._on_expert_slider_changed)
        self.auto_button.clicked.connect(self._on_auto_button_clicked)
        self.fit_button.clicked.connect(self._on_fit_button_clicked)
        self.load_button.clicked.connect(self._on_load_button_clicked)

    def _build_memory(self) -> QGroupBox:
        memory = QGroupBox("Memory map", self)
        layout = QVBoxLayout(memory)
        layout.setSpacing(4)
        self._maps = [DeviceMapWidget(memory) for _ in self._plan.devices]
        for m in self._maps:
            layout.addWidget(m)
        self.legend = LegendWidget(self._plan.unified_memory, memory)
        layout.addWidget(self.legend)
        return memory

    def _build_context(self) -> QGroupBox:
        context = QGroupBox("Context", self)
        form = QFormLayout(context)
        self.ctx_control = ContextSlider(self._steps, context)
        self.ctx_slider = self.ctx_control.slider
        self.ctx_spin = QSpinBox(context)
        self.ctx_spin.setRange(1, self._steps[-1])
        self.ctx_spin.setSingleStep(1024)
        self.ctx_spin.setGroupSeparatorShown(True)
        self.ctx_spin.setSuffix(" tokens")
        self.ctx_spin.setMinimumWidth(150)
        self.recall_label = QLabel(context)  # a probe's stored result (probe_dialog)
        self.recall_label.hide()
        self.probe_button = QPushButton("Test this context…", context)
        self.probe_button.setToolTip("Measure how well the model recalls facts deep in a prompt")
        self.probe_button.hide()  # shown where the window can run a probe
        slider_side, spin_side = QVBoxLayout(), QVBoxLayout()
        slider_side.addWidget(self.ctx_control)
        slider_side.addWidget(self.recall_label)
        spin_side.addWidget(self.ctx_spin)
        spin_side.addWidget(self.probe_button)
        row = QHBoxLayout()
        row.addLayout(slider_side, 1)
        row.addLayout(spin_side, 0)
        spin_side.setAlignment(Qt.AlignmentFlag.AlignTop)
        form.addRow("Context length:", row)
        self.kv_combo = QComboBox(context)
        for t in KV_TYPES:
            self.kv_combo.addItem(str(t), t)
        self.kv_combo.setCurrentIndex(KV_TYPES.index(self._wishes.kv_type))
        form.addRow("KV cache type:", self.kv_combo)
        self.kv_label = QLabel(context)
        form.addRow("KV cache:", self.kv_label)
        return context

    def _build_experts(self) -> QGroupBox:
        experts = QGroupBox("Routed experts and speed", self)
        self._experts_form = form = QFormLayout(experts)
        self.expert_slider = QSlider(Qt.Orientation.Horizontal, experts)
        self.expert_slider.setRange(0, max(self._plan.n_moe_layers, 0))
        self.expert_value = QLabel(experts)
        self.expert_value.setMinimumWidth(230)
        self.auto_button = QPushButton("Auto", experts)
        self.auto_button.setToolTip("Let the planner put as many expert layers on the GPU as fit")
        self._expert_row = QHBoxLayout()
        self._expert_row.addWidget(self.expert_slider, 1)
        self._expert_row.addWidget(self.expert_value)
        self._expert_row.addWidget(self.auto_button)
        form.addRow("Expert layers on GPU:", self._expert_row)
        self.no_slider_note = QLabel(experts)
        form.addRow("Routed experts:", self.no_slider_note)
        has_slider = words.has_gpu(self._plan) and self._plan.n_moe_layers > 0
        form.setRowVisible(self._expert_row, has_slider)
        form.setRowVisible(self.no_slider_note, not has_slider)
        self.speed_label = QLabel(experts)
        form.addRow("Predicted decode:", self.speed_label)
        return experts

    def _build_reasons(self) -> QGroupBox:
        box = QGroupBox("Why", self)
        layout = QVBoxLayout(box)
        self.reasons = QLabel(box)
        self.reasons.setWordWrap(True)
        self.reasons.setTextFormat(Qt.TextFormat.RichText)
        self.reasons.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.reasons.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        scroll = QScrollArea(box)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.reasons)
        scroll.setMinimumHeight(60)
        layout.addWidget(scroll)
        return box

    # --- showing --------------------------------------------------------------------

    def _show_plan(self, plan: Plan) -> None:
        gpu_total = sum(d.total for d in plan.devices if d.kind == "gpu")
        for m, d in zip(self._maps, plan.devices, strict=True):
            shared = gpu_total if plan.unified_memory and d.kind == "cpu" else 0
            m.show_device(d, shared)
        self.legend.show_overflow(any(m.bar.overflow() for m in self._maps))
        if self._wishes.n_ctx is None:
            self._set_context_controls(plan.n_ctx)
        self._show_kv(plan)
        self._show_experts(plan)
        good, bad = verdict_colors(self)
        self.verdict.setText(words.verdict_text(plan, self._wishes.gpu_expert_layers, good, bad))
        self.fit_button.setText(f"Use {count_text(plan.max_ctx)} tokens")
        self.fit_button.setVisible(not plan.fits and plan.max_ctx >= 1)
        items = "".join(f"<li>{html.escape(r)}</li>" for r in words.why(plan))
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
            self.kv_combo.setItemText(i, f"{t}  —  {size_text(cost)} at this context")
        self.kv_label.setText(words.kv_text(plan))

    def _show_experts(self, plan: Plan) -> None:
        pinned = self._wishes.gpu_expert_layers
        value = len(plan.gpu_expert_layers) if pinned is None else pinned
        self.expert_slider.blockSignals(True)
        self.expert_slider.setValue(value)
        self.expert_slider.blockSignals(False)
        self.expert_value.setText(words.expert_text(plan, pinned, verdict_colors(self)[1]))
        self.auto_button.setEnabled(pinned is not None)
        self.no_slider_note.setText(words.no_slider_text(plan))
        self.speed_label.setText(words.speed_text(plan))

    # --- slots ----------------------------------------------------------------------

    def _wish(self, **changes: Any) -> None:  # fields of Wishes (replace refuses others)
        self._wishes = dataclasses.replace(self._wishes, **changes)
        self._timer.start()

    def _on_timer_timeout(self) -> None:
        self.replan()

    def _on_workers_list_workers_changed(self, workers: tuple[Worker, ...]) -> None:
        self._workers = workers
        n = len(make_plan(self._info, self._hardware, self._wishes, workers).devices)
        memory = self.legend.parentWidget()
        assert memory is not None
        layout = memory.layout()
        assert isinstance(layout, QVBoxLayout)
        while len(self._maps) > n:  # one map per device: the workers' come and go
            gone = self._maps.pop(0)
            layout.removeWidget(gone)
            gone.deleteLater()
        while len(self._maps) < n:
            self._maps.insert(0, DeviceMapWidget(memory))
            layout.insertWidget(0, self._maps[0])
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
    """The panel in a dialog, Close next to Load; accepted when Load is pressed."""

    load_requested = Signal(object)  # Wishes

    def __init__(
        self,
        info: GGUFInfo,
        hardware: Hardware,
        wishes: Wishes | None = None,
        parent: QWidget | None = None,
        in_use: str = "",
        probe: ProbeSetup | None = None,
    ) -> None:
        """Wrap an :class:`OffloadPanel`, sized to fit the screen it opens on.

        ``in_use``: the plan the model is loaded with now, in one line ("" when none).
        ``probe``: what "Test this context…" needs (None: no such button).
        """
        super().__init__(parent)
        self.setWindowTitle(f"Offload & Context: {info.path.name}")
        self.panel = OffloadPanel(info, hardware, wishes, self)
        close = self.panel.button_box.addButton(QDialogButtonBox.StandardButton.Close)
        close.clicked.connect(self.reject)
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
        self.panel.load_requested.connect(self._on_panel_load_requested)
        self.probe = attach_probe(self, self.panel, info.path, probe) if probe is not None else None
        width, height = DIALOG_SIZE
        screen = (parent.screen() if parent is not None else self.screen()).availableGeometry()
        self.resize(min(width, screen.width()), min(height, screen.height() - TITLE_BAR))

    def _on_panel_load_requested(self, settings: object) -> None:
        self.load_requested.emit(settings)
        self.accept()
