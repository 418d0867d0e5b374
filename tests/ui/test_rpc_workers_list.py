"""The Workers list of Offload & Context: ask a worker, and the plan uses its devices."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from app.core.hardware.spec import profile
from app.core.hardware.workers import InfoServer, read_recorded
from app.core.plan.planner import Wishes
from app.ui.offload.offload_panel import OffloadPanel
from tests.fixtures.real_layouts import scout_q4_k_m

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "rpc_workers_three_machines.json"


def test_asking_a_worker_replans_across_it(qtbot) -> None:
    gpu_worker = read_recorded(RECORDED)[0]
    info = {k: v for k, v in gpu_worker.to_json().items() if k != "endpoint"}
    server = InfoServer(("127.0.0.1", 0), info)
    server.serve_in_background()
    endpoint = f"127.0.0.1:{server.server_address[1] - 1}"
    small = dataclasses.replace(profile("cpu-64gb"), ram_available=24 << 30)
    panel = OffloadPanel(scout_q4_k_m(), small, Wishes(n_ctx=8192))
    qtbot.addWidget(panel)
    try:
        assert not panel.plan.fits and len(panel.device_maps()) == 1
        with qtbot.waitSignal(panel.plan_changed, timeout=10_000):
            panel.workers_list.set_endpoints([endpoint])
        assert panel.plan.fits and panel.plan.rpc_servers == (endpoint,)
        remote = [d for d in panel.plan.devices if d.kind == "remote"]
        assert [d.host for d in remote] == [endpoint, endpoint]
        assert len(panel.device_maps()) == 3
        assert endpoint in panel.workers_list.answers.text()
        assert "H100" in panel.workers_list.answers.text()
    finally:
        panel.workers_list.shutdown()
        server.shutdown()
        server.server_close()
