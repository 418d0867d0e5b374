"""Resumable, verified downloads with the real huggingface_hub against a local Hub server."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from app.core.hub import cache as hub_cache
from app.core.hub.catalog import repo_quants
from app.core.hub.client import HubClient, HubConfig, RemoteFile
from app.core.hub.download import Downloader, partial_path
from app.core.hub.jobs import (
    DownloadControl,
    DownloadDone,
    DownloadProgress,
    DownloadQueue,
    DownloadRequest,
    DownloadStopped,
    JobState,
)
from app.core.hub.library import list_models
from app.core.paths import AppPaths
from tests.hub.hub_server import TOKEN

SCOUT = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF"
GATED = "herd-test/Gated-Llama-4-GGUF"


def _request(client: HubClient, paths: AppPaths, quant: str = "Q4_K_M", repo: str = SCOUT):
    quants = repo_quants(client, paths.hub_cache, repo)
    return DownloadRequest.for_quant(quants, quants.find(quant))


def _run(downloader: Downloader, request: DownloadRequest, control=None):
    events = list(downloader.run(request, control or DownloadControl()))
    return events, events[-1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_split_model_and_projector_downloaded_whole(hub, client, paths, downloader):
    request = _request(client, paths)
    assert request.files[0].name.endswith("-00001-of-00002.gguf")
    assert request.files[1].name.endswith("-00002-of-00002.gguf")
    assert request.projector_file == "mmproj-F16.gguf"
    events, last = _run(downloader, request)
    assert isinstance(last, DownloadDone), last
    assert last.path.name.endswith("-00001-of-00002.gguf")
    assert last.projector is not None and last.projector.name == "mmproj-F16.gguf"
    repo = hub.repos[SCOUT]
    for f in request.files:
        local = hub_cache.snapshot_path(paths.hub_cache, SCOUT, repo.commit, f.name)
        assert _sha(local) == repo.files[f.name].sha256
        assert local.is_symlink() and local.resolve().name == repo.files[f.name].sha256
    refs = hub_cache.repo_dir(paths.hub_cache, SCOUT) / "refs" / "main"
    assert refs.read_text() == repo.commit
    progress = [e for e in events if isinstance(e, DownloadProgress)]
    assert progress[-1].done == request.total and progress[-1].fraction == 1.0
    assert all(e.total == request.total for e in progress)
    assert not list(paths.downloads.glob("*.part"))
    # the split model is one library entry that loads from its first part
    models = list_models(paths)
    assert len(models) == 1 and models[0].path == last.path and models[0].n_parts == 2
    assert models[0].quant == "Q4_K_M"


def test_cut_connection_resumes_with_range(hub, client, paths, downloader):
    request = _request(client, paths, "Q8_0")
    name = request.model_file
    size = hub.repos[SCOUT].files[name].size
    hub.faults.cut_after[name] = size // 2
    _, last = _run(downloader, request)
    assert isinstance(last, DownloadDone), last
    assert _sha(last.path) == hub.repos[SCOUT].files[name].sha256
    gets = [r for n, r in hub.ranges if n == name]
    assert gets[0] == "" and gets[1].startswith("bytes=")
    resumed_at = int(gets[1].removeprefix("bytes=").rstrip("-"))
    assert size // 2 - (64 << 10) <= resumed_at <= size // 2
    assert hub.sent[name] < size * 1.2  # the second request sent only the rest


def test_failed_run_leaves_partial_and_next_run_sends_fewer_bytes(hub, client, paths):
    downloader = Downloader(client, paths.downloads, paths.hub_cache, max_retries=0, chunk=16 << 10)
    request = _request(client, paths, "Q8_0")
    name = request.model_file
    size = hub.repos[SCOUT].files[name].size
    hub.faults.cut_after[name] = size * 3 // 4
    _, last = _run(downloader, request)
    assert isinstance(last, DownloadStopped) and last.state is JobState.FAILED
    assert "cannot be reached" in last.message
    first = hub.sent[name]
    assert partial_path(paths.downloads, request, request.files[0]).stat().st_size > 0
    _, last = _run(downloader, request)
    assert isinstance(last, DownloadDone)
    assert _sha(last.path) == hub.repos[SCOUT].files[name].sha256
    second = hub.sent[name] - first
    assert second < first and first + second <= size + (16 << 10)  # at most a chunk again


def test_corrupted_byte_fails_verification_and_is_not_offered(hub, client, paths, downloader):
    request = _request(client, paths, "Q8_0")
    hub.faults.corrupt_at[request.model_file] = 100_000
    _, last = _run(downloader, request)
    assert isinstance(last, DownloadStopped) and last.state is JobState.FAILED
    assert last.error == "ChecksumError"
    assert "damaged" in last.message and "sha256" in last.message
    assert hub_cache.find_cached(paths.hub_cache, SCOUT, request.model_file) is None
    assert not list(paths.downloads.glob("*.part"))
    assert list_models(paths) == []


def test_gated_repo_asks_for_a_token_then_downloads(hub, paths):
    anonymous = HubClient(HubConfig(endpoint=hub.endpoint, token=False))
    request = _request(anonymous, paths, "Q4_K_M", GATED)
    _, last = _run(Downloader(anonymous, paths.downloads, paths.hub_cache), request)
    assert isinstance(last, DownloadStopped) and last.needs_token
    assert "gated" in last.message and "token" in last.hint.lower()
    wrong = HubClient(HubConfig(endpoint=hub.endpoint, token="hf_wrong"))
    _, last = _run(Downloader(wrong, paths.downloads, paths.hub_cache), request)
    assert isinstance(last, DownloadStopped) and last.needs_token
    authorised = HubClient(HubConfig(endpoint=hub.endpoint, token=TOKEN))
    _, last = _run(Downloader(authorised, paths.downloads, paths.hub_cache), request)
    assert isinstance(last, DownloadDone), last


def test_not_enough_disk_space_refused_before_a_byte(hub, client, paths):
    request = _request(client, paths)
    downloader = Downloader(
        client, paths.downloads, paths.hub_cache, free_space_fn=lambda _: request.total - 1
    )
    _, last = _run(downloader, request)
    assert isinstance(last, DownloadStopped) and last.error == "DiskSpaceError"
    assert "Not enough disk space" in last.message and "Free" in last.hint
    assert hub.ranges == [] and hub.sent == {}
    assert not list(paths.downloads.glob("*.part"))
    # exactly enough is enough
    enough = Downloader(
        client, paths.downloads, paths.hub_cache, free_space_fn=lambda _: request.total
    )
    _, last = _run(enough, request)
    assert isinstance(last, DownloadDone)


def test_disk_check_counts_partial_data_already_here(hub, client, paths, downloader):
    request = _request(client, paths, "Q8_0")
    control = DownloadControl()
    for event in downloader.run(request, control):
        if isinstance(event, DownloadProgress) and event.file_done > 100_000:
            control.pause()
    have = partial_path(paths.downloads, request, request.files[0]).stat().st_size
    rest = request.total - have
    tight = Downloader(client, paths.downloads, paths.hub_cache, free_space_fn=lambda _: rest)
    _, last = _run(tight, request)
    assert isinstance(last, DownloadDone)


def test_cancel_mid_file_removes_partial_data(hub, client, paths, downloader):
    request = _request(client, paths, "Q8_0")
    control = DownloadControl()
    events = []
    for event in downloader.run(request, control):
        events.append(event)
        if isinstance(event, DownloadProgress) and event.file_done >= 64 << 10:
            control.cancel()
    last = events[-1]
    assert isinstance(last, DownloadStopped) and last.state is JobState.CANCELLED
    received = max(e.file_done for e in events if isinstance(e, DownloadProgress))
    assert received < hub.repos[SCOUT].files[request.model_file].size  # stopped mid-file
    assert not list(paths.downloads.glob("*.part"))
    assert hub_cache.find_cached(paths.hub_cache, SCOUT, request.model_file) is None


def test_pause_keeps_partial_and_resume_finishes(hub, client, paths, downloader):
    request = _request(client, paths, "Q8_0")
    control = DownloadControl()
    for event in downloader.run(request, control):
        if isinstance(event, DownloadProgress) and event.file_done >= 64 << 10:
            control.pause()
        last = event
    assert isinstance(last, DownloadStopped) and last.state is JobState.PAUSED
    part = partial_path(paths.downloads, request, request.files[0])
    assert part.stat().st_size >= 64 << 10
    events, last = _run(downloader, request)
    assert isinstance(last, DownloadDone)
    assert any(isinstance(e, DownloadProgress) and e.phase == "checking" for e in events)
    assert [r for n, r in hub.ranges if n == request.model_file][-1].startswith("bytes=")


def test_restart_mid_download_resumes_from_the_saved_queue(hub, client, paths, downloader):
    request = _request(client, paths, "Q8_0")
    queue = DownloadQueue.load(paths.downloads)
    queue.add(request)
    queue.update(request.key, JobState.RUNNING)
    job = downloader.run(request, DownloadControl())
    for event in job:  # the app is killed: the generator is simply dropped mid-file
        if isinstance(event, DownloadProgress) and event.file_done >= 128 << 10:
            break
    job.close()
    sent_before = hub.sent[request.model_file]

    restarted = DownloadQueue.load(paths.downloads)
    entry = restarted.next_queued()
    assert entry is not None and entry.request == request
    fresh = Downloader(
        HubClient(HubConfig(endpoint=hub.endpoint, token=False)),
        paths.downloads,
        paths.hub_cache,
    )
    _, last = _run(fresh, entry.request)
    assert isinstance(last, DownloadDone)
    size = hub.repos[SCOUT].files[request.model_file].size
    assert _sha(last.path) == hub.repos[SCOUT].files[request.model_file].sha256
    assert hub.sent[request.model_file] - sent_before <= size - (128 << 10)
    restarted.update(entry.request.key, JobState.DONE, path=str(last.path))
    assert DownloadQueue.load(paths.downloads).get(request.key).state is JobState.DONE


def test_server_ignoring_range_restarts_cleanly(hub, client, paths, downloader):
    request = _request(client, paths, "Q8_0")
    name = request.model_file
    hub.faults.cut_after[name] = 300_000
    hub.faults.ignore_range = True
    _, last = _run(downloader, request)
    assert isinstance(last, DownloadDone)
    assert _sha(last.path) == hub.repos[SCOUT].files[name].sha256


def test_already_cached_files_are_not_downloaded_again(hub, client, paths, downloader):
    request = _request(client, paths, "Q8_0")
    _run(downloader, request)
    hub.reset()
    _, last = _run(downloader, request)
    assert isinstance(last, DownloadDone) and hub.sent == {}


def test_missing_repo_and_no_network_are_clear_errors(hub, paths):
    from app.core.hub.errors import HubOfflineError, RepoNotFoundError

    client = HubClient(HubConfig(endpoint=hub.endpoint, token=False))
    with pytest.raises(RepoNotFoundError, match="not found"):
        repo_quants(client, paths.hub_cache, "nobody/nothing-GGUF")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = HubClient(HubConfig(endpoint=f"http://127.0.0.1:{port}", token=False))
    with pytest.raises(HubOfflineError, match="cannot be reached"):
        repo_quants(dead, paths.hub_cache, SCOUT)
    offline = HubClient(HubConfig(endpoint=hub.endpoint, offline=True))
    with pytest.raises(HubOfflineError, match="Offline mode"):
        repo_quants(offline, paths.hub_cache, SCOUT)


def test_a_file_changed_on_the_hub_is_caught_before_downloading(hub, client, paths, downloader):
    request = _request(client, paths, "Q8_0")
    stale = DownloadRequest(
        request.repo_id,
        request.revision,
        (RemoteFile(request.files[0].name, request.files[0].size, "0" * 64),),
        quant="Q8_0",
    )
    _, last = _run(downloader, stale)
    assert isinstance(last, DownloadStopped) and "changed on the Hub" in last.message
    assert hub.sent == {}


def test_files_are_fetched_by_commit_and_endpoint_comes_from_hf_endpoint(hub, client, paths):
    config = HubConfig.from_env({"HF_ENDPOINT": hub.endpoint + "/", "HF_HUB_OFFLINE": "0"})
    assert config.endpoint == hub.endpoint and not config.offline
    assert HubConfig.from_env({"HF_HUB_OFFLINE": "1"}).offline
    assert HubConfig.from_env({}).endpoint == "https://huggingface.co"
    request = _request(client, paths, "Q8_0")
    assert request.commit == hub.repos[SCOUT].commit
    _run(Downloader(HubClient(config), paths.downloads, paths.hub_cache), request)
    assert hub.ranges  # the files came from HF_ENDPOINT's server


def test_two_jobs_never_write_the_same_partial_file(hub, client, paths, downloader):
    request = _request(client, paths, "Q8_0")
    first = downloader.run(request, DownloadControl())
    for event in first:
        if isinstance(event, DownloadProgress) and event.file_done > 0:
            break
    _, last = _run(Downloader(client, paths.downloads, paths.hub_cache), request)
    assert isinstance(last, DownloadStopped) and "another Herd" in last.message
    rest = list(first)
    assert isinstance(rest[-1], DownloadDone)
    assert _sha(rest[-1].path) == hub.repos[SCOUT].files[request.model_file].sha256


def test_cdn_redirect_without_the_token_and_an_expired_signature_renewed(hub, paths):
    hub.faults.cdn = True
    authorised = HubClient(HubConfig(endpoint=hub.endpoint, token=TOKEN))
    downloader = Downloader(authorised, paths.downloads, paths.hub_cache, backoff_s=0.01)
    request = _request(authorised, paths, "Q8_0")
    name = request.model_file
    hub.faults.cut_after[name] = 200_000  # a cut, then the signed address has expired
    hub.faults.expired_cdn = 1
    _, last = _run(downloader, request)
    assert isinstance(last, DownloadDone), last
    assert _sha(last.path) == hub.repos[SCOUT].files[name].sha256
    assert hub.signatures >= 3  # asked the Hub again for a fresh address
    assert not hub.cdn_saw_token


def test_disk_full_during_the_download_is_said_in_words(
    hub, client, paths, downloader, monkeypatch
):
    import errno

    from app.core.hub import download as download_module

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    request = _request(client, paths, "Q8_0")
    monkeypatch.setattr(download_module.hub_cache, "store", full)
    _, last = _run(downloader, request)
    assert isinstance(last, DownloadStopped) and last.error == "DiskSpaceError"
    assert "disk filled up" in last.message and "resume" in last.hint
    monkeypatch.undo()
    _, last = _run(downloader, request)  # the verified part is kept: nothing is sent again
    assert isinstance(last, DownloadDone)
