"""The planner's verdict from a quant's headers, fetched with HTTP Range before downloading."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.gguf.info import read_gguf
from app.core.hardware.probe import Backend, Device, Hardware
from app.core.hub.catalog import repo_quants
from app.core.hub.remote_plan import plan_quant
from app.core.hub.verdict import Fit
from app.core.plan.planner import make_plan
from tests.fixtures import real_layouts
from tests.hub.hub_server import HubFile, HubRepo

REPO = "herd-test/Real-Layout-Scout-GGUF"
NAME = "Llama-4-Scout-17B-16E-Instruct-Q4_K_M.gguf"
GiB = 1 << 30


def _machine(vram_gib: int, ram_gib: int) -> Hardware:
    gpu = Device("CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 4090", vram_gib * GiB, vram_gib * GiB)
    return Hardware((gpu,), ram_gib * GiB, ram_gib * GiB, 16)


@pytest.fixture(scope="module")
def scout_header_only(model_cache_dir: Path) -> Path:
    if not real_layouts.sparse_files_work(model_cache_dir):
        pytest.skip("this file system does not keep sparse files")
    return real_layouts.ensure_header_only(real_layouts.SCOUT_Q4_K_M, model_cache_dir)


@pytest.fixture
def real_repo(hub, scout_header_only):
    f = HubFile(NAME, path=scout_header_only, sha256="ab" * 32)  # never hashed: not served whole
    return hub.add(HubRepo(REPO, {NAME: f}, commit="c" * 40))


def test_planner_verdict_from_the_headers_alone(hub, client, paths, real_repo, scout_header_only):
    quants = repo_quants(client, paths.hub_cache, REPO)
    option = quants.find("Q4_K_M")
    assert option.size > 60 * GiB
    hw = _machine(24, 64)
    verdict, plan = plan_quant(client, paths.cache, quants.commit, option, hw)
    local = make_plan(read_gguf(scout_header_only), hw)
    assert plan.to_json() | {"model": ""} == local.to_json() | {"model": ""}
    assert verdict.planned and verdict.fit is Fit.EXPERTS_CPU
    assert verdict.tok_s == pytest.approx(local.predicted_decode_tok_s)
    assert "experts in CPU memory" in verdict.text() and "tokens of context" in verdict.text()
    fetched = hub.sent[NAME]
    assert fetched <= 16 << 20  # the header, not the 65 GB, each byte fetched once
    # asked again: from the kept headers, no network
    again, _ = plan_quant(client, paths.cache, quants.commit, option, _machine(80, 128))
    assert hub.sent[NAME] == fetched
    assert again.fit is Fit.ALL_GPU


def test_a_quant_that_does_not_fit(hub, client, paths, real_repo):
    quants = repo_quants(client, paths.hub_cache, REPO)
    verdict, plan = plan_quant(
        client, paths.cache, quants.commit, quants.quants[0], _machine(8, 16)
    )
    assert not plan.fits and verdict.fit is Fit.NO_FIT and verdict.text() == "does not fit"


def test_a_file_without_layers_is_refused_in_words(hub, client, paths):
    from app.core.errors import HerdError

    quants = repo_quants(client, paths.hub_cache, "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF")
    # the test repo's files are a bare GGUF header then noise: nothing to plan
    with pytest.raises(HerdError, match="no layers to place"):
        plan_quant(client, paths.cache, quants.commit, quants.find("Q8_0"), _machine(24, 64))
