"""Where models go and where they are found: the standard Hugging Face cache, Herd's old folder.

Downloads go to the cache huggingface_hub itself uses (``HF_HUB_CACHE``, ``HF_HOME``), in
its layout, so other tools see them; what Herd downloaded to its own folder before stays
in the library and is not downloaded again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.__main__ import main
from app.core.hub import library
from app.core.hub.download import Downloader
from app.core.hub.jobs import DownloadControl, DownloadDone, DownloadRequest
from app.core.hub.local_models import Origin
from app.core.hub.service import HubService
from app.core.paths import AppPaths, hf_hub_cache, lmstudio_home, ollama_models

SCOUT = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF"
REPO_DIR = "models--herd-test--Llama-4-Scout-17B-16E-Instruct-GGUF"


def _hub_python_cache(env: dict[str, str], home: Path) -> Path:
    """Where huggingface_hub itself puts its cache with ``env`` (in a clean child process)."""
    child = {"HOME": str(home), "USERPROFILE": str(home), "PATH": os.environ.get("PATH", "")}
    code = "from huggingface_hub import constants; print(constants.HF_HUB_CACHE)"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**child, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip())


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"XDG_CACHE_HOME": "{tmp}/xdg"},
        {"HF_HOME": "{tmp}/hf-home"},
        {"HF_HOME": "{tmp}/hf-home", "HF_HUB_CACHE": "{tmp}/hub-cache"},
        {"HF_HOME": "{tmp}/hf-home", "HUGGINGFACE_HUB_CACHE": "{tmp}/legacy-cache"},
        {"XDG_CACHE_HOME": "{tmp}/xdg", "HF_HOME": "{tmp}/hf-home"},
    ],
)
def test_the_cache_is_where_huggingface_hub_puts_it(tmp_path, env):
    env = {k: v.format(tmp=tmp_path) for k, v in env.items()}
    home = tmp_path / "home"
    assert hf_hub_cache(env, home) == _hub_python_cache(env, home)


def test_default_paths_use_the_shared_cache_and_look_at_other_apps(tmp_path):
    home = tmp_path / "home"
    env = {"HF_HOME": str(tmp_path / "hf"), "OLLAMA_MODELS": str(tmp_path / "ollama")}
    paths = AppPaths.default(environ=env, home=home)
    assert paths.hub_cache == tmp_path / "hf" / "hub"
    assert paths.legacy_hub_cache == paths.models / "hub" != paths.hub_cache
    assert paths.ollama_models == (tmp_path / "ollama",)
    assert paths.lmstudio_home == home / ".lmstudio"
    assert ollama_models({}, home, "linux") == (
        home / ".ollama" / "models",
        Path("/usr/share/ollama/.ollama/models"),
    )
    assert ollama_models({}, home, "darwin") == (home / ".ollama" / "models",)
    (home / ".cache" / "lm-studio").mkdir(parents=True)
    assert lmstudio_home(home) == home / ".cache" / "lm-studio"  # an older LM Studio's
    (home / ".lmstudio-home-pointer").write_text(f"{tmp_path / 'moved'}\n", encoding="utf-8")
    assert lmstudio_home(home) == tmp_path / "moved"


def test_herd_home_keeps_everything_in_one_folder(tmp_path):
    paths = AppPaths.under(tmp_path)
    assert paths.hub_cache == paths.legacy_hub_cache == tmp_path / "data" / "models" / "hub"
    assert paths.lmstudio_home is None and paths.ollama_models == ()
    assert [o for o, _ in library.sources(paths)] == [Origin.HF_CACHE]


def _standard(tmp_path: Path) -> AppPaths:
    """Herd's folders in ``tmp_path/herd``, the Hugging Face cache where ``HF_HOME`` says."""
    cache = hf_hub_cache({"HF_HOME": str(tmp_path / "hf")}, tmp_path / "home")
    return dataclasses.replace(AppPaths.under(tmp_path / "herd"), hub_cache=cache).ensure()


def _pull(downloader: Downloader, service: HubService, quant: str) -> DownloadDone:
    quants = service.quants(SCOUT)
    request = DownloadRequest.for_quant(quants, quants.find(quant))
    events = list(downloader.run(request, DownloadControl()))
    assert isinstance(events[-1], DownloadDone), events[-1]
    return events[-1]


def test_a_download_lands_in_the_standard_cache_in_its_layout(hub, tmp_path):
    from huggingface_hub import scan_cache_dir, try_to_load_from_cache

    paths = _standard(tmp_path)
    service = HubService(paths, endpoint=hub.endpoint, token=False)
    done = _pull(service.downloader(), service, "Q8_0")
    commit = service.quants(SCOUT).commit
    repo = tmp_path / "hf" / "hub" / REPO_DIR
    name = "Llama-4-Scout-17B-16E-Instruct-Q8_0.gguf"
    assert done.path == repo / "snapshots" / commit / name
    assert done.path.resolve().parent == repo / "blobs"
    assert (repo / "refs" / "main").read_text(encoding="utf-8") == commit
    assert not paths.legacy_hub_cache.exists() or not any(paths.legacy_hub_cache.iterdir())
    # huggingface_hub (and so every tool built on it) sees the same files
    cache = tmp_path / "hf" / "hub"
    assert try_to_load_from_cache(SCOUT, name, cache_dir=cache) == str(done.path)
    scanned = scan_cache_dir(cache)
    assert [r.repo_id for r in scanned.repos] == [SCOUT] and not scanned.warnings
    [model] = library.list_models(paths)
    assert (model.path, model.origin, model.repo_id) == (done.path, Origin.HF_CACHE, SCOUT)
    assert model.where == f"Hugging Face cache: {SCOUT}"


def test_models_in_herds_old_folder_stay_and_are_not_downloaded_again(hub, client, tmp_path):
    paths = _standard(tmp_path)
    service = HubService(paths, endpoint=hub.endpoint, token=False)
    before = Downloader(client, paths.downloads, paths.legacy_hub_cache)  # what Herd did
    old = _pull(before, service, "Q4_K_M")
    assert old.path.is_relative_to(paths.legacy_hub_cache)
    [model] = library.list_models(paths)
    assert (model.path, model.origin, model.n_parts) == (old.path, Origin.HERD_OLD, 2)
    assert model.projector is not None and model.where == f"Herd's old folder: {SCOUT}"

    offline = HubService(paths, endpoint="http://127.0.0.1:9", token=False, offline=True)
    assert offline.quants(SCOUT).find("Q4_K_M").first_file.endswith(old.path.name)
    hub.reset()
    again = _pull(service.downloader(), service, "Q4_K_M")
    assert again.path == old.path and not any(hub.sent.values())  # not one byte again
    new = _pull(service.downloader(), service, "Q8_0")
    assert new.path.is_relative_to(paths.hub_cache)
    origins = {m.quant: m.origin for m in library.list_models(paths)}
    assert origins == {"Q4_K_M": Origin.HERD_OLD, "Q8_0": Origin.HF_CACHE}
    old_model = next(m for m in library.list_models(paths) if m.origin is Origin.HERD_OLD)
    assert library.delete(paths, old_model) > old_model.size  # its projector went with it
    assert not (paths.legacy_hub_cache / REPO_DIR).exists()
    assert [m.quant for m in library.list_models(paths)] == ["Q8_0"]


def test_herd_models_adds_lists_and_removes_folders(tmp_path, monkeypatch, capsys):
    from tests.hub.hub_server import gguf_bytes

    monkeypatch.setenv("HERD_HOME", str(tmp_path / "home"))
    mine = tmp_path / "my models"
    (mine / "deep" / "er").mkdir(parents=True)
    (mine / "deep" / "er" / "Mine-Q5_K_M.gguf").write_bytes(gguf_bytes(800, 1))
    assert main(["models", "--add-folder", str(mine), "--json"]) == 0
    out, err = capsys.readouterr()
    [row] = json.loads(out)
    assert row["origin"] == "folder" and row["where"] == "your folder"
    assert row["source"] == "folder" and row["quant"] == "Q5_K_M" and str(mine) in err
    assert set(row) >= {"name", "quant", "size", "parts", "source", "path", "projector"}

    assert main(["models", "--folders", "--json"]) == 0
    where = json.loads(capsys.readouterr().out)
    mine_row = {"origin": "folder", "where": "your folder", "path": str(mine.resolve())}
    assert {**mine_row, "exists": True} in where
    assert main(["models"]) == 0
    assert "Mine-Q5_K_M" in capsys.readouterr().out

    assert main(["models", "--remove-folder", str(mine)]) == 0
    capsys.readouterr()
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["models", "--remove-folder", str(mine)]) == 2
    assert capsys.readouterr().err.startswith("herd: ")
    assert main(["models", "--add-folder", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_cache_on_another_disk_must_have_room_too(hub, tmp_path, monkeypatch):
    from app.core.hub import download as download_module
    from app.core.hub.jobs import DownloadStopped, JobState

    paths = _standard(tmp_path)
    monkeypatch.setattr(download_module, "same_disk", lambda a, b: False)
    free = {paths.downloads: 1 << 40, paths.hub_cache: 1000}  # e.g. HF_HOME on a full drive
    service = HubService(paths, endpoint=hub.endpoint, token=False, free_space_fn=free.__getitem__)
    quants = service.quants(SCOUT)
    request = DownloadRequest.for_quant(quants, quants.find("Q8_0"))
    [stopped] = list(service.downloader().run(request, DownloadControl()))
    assert isinstance(stopped, DownloadStopped) and stopped.state is JobState.FAILED
    assert stopped.error == "DiskSpaceError" and f"free on {paths.hub_cache}" in stopped.message
    assert not any(hub.sent.values())  # refused before the first byte
