"""The catalog: quants grouped from the Hub's file metadata, search, verdicts, offline."""

from __future__ import annotations

import pytest

from app.core.hardware.probe import Backend, Device, Hardware
from app.core.hub.catalog import CURATED, group_quants, quant_name, repo_quants, search
from app.core.hub.client import HubClient, HubConfig, RemoteFile, RepoListing
from app.core.hub.download import Downloader
from app.core.hub.errors import HubOfflineError, RepoNotFoundError
from app.core.hub.jobs import DownloadControl, DownloadRequest
from app.core.hub.service import verdicts
from app.core.hub.verdict import Fit, judge, recommend

SCOUT = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF"
GiB = 1 << 30


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("Llama-4-Scout-17B-16E-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("UD-Q4_K_XL/Llama-4-Scout-17B-16E-Instruct-UD-Q4_K_XL-00001-of-00002.gguf", "UD-Q4_K_XL"),
        ("meta-llama_Llama-4-Scout-17B-16E-Instruct-IQ2_XXS.gguf", "IQ2_XXS"),
        ("Maverick-7B.f16.gguf", "F16"),
        ("x-Q8_0-00003-of-00009.gguf", "Q8_0"),
        ("model-BF16.gguf", "BF16"),
        ("plain.gguf", "plain"),
    ],
)
def test_quant_name(name, quant):
    assert quant_name(name) == quant


def test_split_files_grouped_with_total_size_and_projectors_apart(hub, client, paths):
    quants = repo_quants(client, paths.hub_cache, SCOUT)
    assert [q.quant for q in quants.quants] == ["Q4_K_M", "Q8_0"]
    q4 = quants.find("q4_k_m")
    assert q4.n_parts == 2 and q4.size == 500_000
    assert q4.first_file.endswith("-00001-of-00002.gguf")
    assert q4.files[0].sha256 == hub.repos[SCOUT].files[q4.first_file].sha256
    assert [p.name for p in quants.projectors] == ["mmproj-F16.gguf"]
    assert quants.commit == hub.repos[SCOUT].commit and not quants.gated
    with pytest.raises(RepoNotFoundError, match="no Q2_K quant"):
        quants.find("Q2_K")


def test_split_parts_sorted_even_when_listed_out_of_order():
    files = tuple(RemoteFile(f"m-Q4_K_M-0000{i}-of-00003.gguf", 10, None) for i in (3, 1, 2))
    grouped = group_quants(RepoListing("o/r", "c", files))
    assert [f.name[-19:] for f in grouped.quants[0].files] == [
        "00001-of-00003.gguf",
        "00002-of-00003.gguf",
        "00003-of-00003.gguf",
    ]


def test_search_finds_gguf_repos(hub, client):
    hits = search(client, "scout")
    assert [h.repo_id for h in hits] == [SCOUT]
    assert hits[0].downloads == 10


def test_curated_list_covers_the_four_publishers():
    publishers = {c.repo_id.split("/")[0] for c in CURATED}
    assert publishers == {"unsloth", "bartowski", "lmstudio-community", "ggml-org"}
    assert {c.family for c in CURATED} == {"Scout", "Maverick"}


def test_offline_mode_lists_what_is_cached(hub, client, paths):
    quants = repo_quants(client, paths.hub_cache, SCOUT)
    request = DownloadRequest.for_quant(quants, quants.find("Q8_0"))
    list(Downloader(client, paths.downloads, paths.hub_cache).run(request, DownloadControl()))
    offline = HubClient(HubConfig(endpoint=hub.endpoint, offline=True))
    cached = repo_quants(offline, paths.hub_cache, SCOUT)
    assert cached.from_cache
    assert [q.quant for q in cached.quants] == ["Q8_0"]
    assert cached.quants[0].files[0].sha256 == quants.find("Q8_0").files[0].sha256
    with pytest.raises(HubOfflineError):
        repo_quants(offline, paths.hub_cache, "herd-test/never-downloaded")


def _gpu(vram_gib: float, ram_gib: float) -> Hardware:
    dev = Device(
        "CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 4090", int(vram_gib * GiB), int(vram_gib * GiB)
    )
    return Hardware((dev,), int(ram_gib * GiB), int(ram_gib * GiB), 16)


def test_verdicts_for_a_24gb_gpu_with_64gb_ram():
    hw = _gpu(24, 64)
    small = judge(15 * GiB, "Llama-4-Scout-17B-16E-Instruct-IQ1_S", hw)
    mid = judge(61 * GiB, "Llama-4-Scout-17B-16E-Instruct-Q4_K_M", hw)
    huge = judge(230 * GiB, "Llama-4-Maverick-17B-128E-Instruct-Q4_K_M", hw)
    assert small.fit is Fit.ALL_GPU and small.tok_s > 20
    assert mid.fit is Fit.EXPERTS_CPU and 3 < mid.tok_s < small.tok_s
    assert mid.text().startswith("experts in CPU memory at about")
    assert huge.fit is Fit.NO_FIT and huge.text() == "does not fit"
    judged = [(15 * GiB, small), (61 * GiB, mid), (230 * GiB, huge)]
    assert recommend(judged) == 0  # without names: nothing says the small one is 1-bit
    assert recommend(judged, ["IQ1_S", "Q4_K_M", "Q4_K_M"]) == 1


def test_recommendation_without_a_gpu_and_when_nothing_fits():
    cpu = Hardware((), 128 * GiB, 120 * GiB, 16)
    v = judge(61 * GiB, "Scout Q4_K_M", cpu)
    assert v.fit is Fit.CPU_ONLY and v.tok_s > 0
    none = judge(500 * GiB, "Maverick", cpu)
    assert recommend([(500 * GiB, none)]) is None


def test_verdicts_per_quant_of_a_repo(hub, client, paths):
    quants = repo_quants(client, paths.hub_cache, SCOUT)
    judged, best = verdicts(quants, _gpu(24, 64))
    assert all(v.fit is Fit.ALL_GPU for v in judged)  # tiny test files
    assert best == 1  # the largest that runs all on the GPU
