"""The local library: the cache and added files, split models, last used, delete, reveal."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.hub import library
from app.core.hub.catalog import repo_quants
from app.core.hub.download import Downloader
from app.core.hub.errors import HubError
from app.core.hub.jobs import DownloadControl, DownloadDone, DownloadRequest
from app.core.hub.token import TokenStore
from tests.hub.hub_server import gguf_bytes

SCOUT = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF"


def _pull(client, paths, quant):
    quants = repo_quants(client, paths.hub_cache, SCOUT)
    request = DownloadRequest.for_quant(quants, quants.find(quant))
    downloader = Downloader(client, paths.downloads, paths.hub_cache)
    events = list(downloader.run(request, DownloadControl()))
    assert isinstance(events[-1], DownloadDone)
    return events[-1]


def test_library_lists_downloads_and_added_files_with_last_use(hub, client, paths, tmp_path):
    q4 = _pull(client, paths, "Q4_K_M")
    q8 = _pull(client, paths, "Q8_0")
    mine = tmp_path / "mine-Q5_K_M.gguf"
    mine.write_bytes(gguf_bytes(1000, 9))
    added = library.add_file(paths, mine)
    assert added.repo_id is None and added.quant == "Q5_K_M" and added.source == "added"
    library.record_use(paths, q8.path, when=100.0)
    library.record_use(paths, mine.resolve(), when=200.0)
    models = library.list_models(paths)
    assert [m.quant for m in models] == ["Q5_K_M", "Q8_0", "Q4_K_M"]  # last used first
    split = models[2]
    assert split.path == q4.path and split.n_parts == 2 and split.size == 500_000
    assert split.projector is not None and split.projector.name == "mmproj-F16.gguf"
    assert models[1].last_used == 100.0 and models[1].repo_id == SCOUT


def test_incomplete_split_model_is_not_offered(hub, client, paths):
    q4 = _pull(client, paths, "Q4_K_M")
    second = q4.path.with_name(q4.path.name.replace("00001-of", "00002-of"))
    second.unlink()
    assert library.list_models(paths) == []


def test_delete_frees_the_blobs_and_keeps_shared_ones(hub, client, paths):
    _pull(client, paths, "Q4_K_M")
    _pull(client, paths, "Q8_0")
    blobs = next(paths.hub_cache.glob("models--*")) / "blobs"
    before = len(list(blobs.iterdir()))
    q4 = next(m for m in library.list_models(paths) if m.quant == "Q4_K_M")
    freed = library.delete(paths, q4)
    assert freed == 500_000
    assert len(list(blobs.iterdir())) == before - 2
    assert [m.quant for m in library.list_models(paths)] == ["Q8_0"]
    q8 = library.list_models(paths)[0]
    library.delete(paths, q8)
    assert library.list_models(paths) == []
    assert not list(paths.hub_cache.glob("models--*"))


def test_deleting_an_added_file_only_forgets_it(paths, tmp_path):
    mine = tmp_path / "keep.gguf"
    mine.write_bytes(gguf_bytes(100, 1))
    library.delete(paths, library.add_file(paths, mine))
    assert mine.exists() and library.list_models(paths) == []
    with pytest.raises(HubError):
        library.add_file(paths, tmp_path / "missing.gguf")


@pytest.mark.parametrize(
    ("platform", "argv0"), [("darwin", "open"), ("win32", "explorer"), ("linux", "xdg-open")]
)
def test_reveal_in_the_file_manager(platform, argv0):
    path = Path("/models/a.gguf")
    assert library.reveal_command(path, platform)[0] == argv0
    seen = []
    library.reveal(path, runner=seen.append)
    assert seen and seen[0][0] in {"open", "explorer", "xdg-open"}


def test_token_file_is_private_and_never_logged(paths, caplog):
    caplog.set_level("DEBUG")
    store = TokenStore(paths.hub_token_file, keyring=None)
    assert store.get() is None
    store.set("  hf_secret123  ")
    assert store.get() == "hf_secret123"
    assert (paths.hub_token_file.stat().st_mode & 0o777) == 0o600
    assert "hf_secret123" not in caplog.text
    with pytest.raises(HubError):
        store.set("not a token")
    store.clear()
    assert store.get() is None


def test_token_goes_to_a_keyring_when_there_is_one(paths):
    class Ring:
        def __init__(self):
            self.saved = {}

        def get_password(self, service, user):
            return self.saved.get((service, user))

        def set_password(self, service, user, value):
            self.saved[(service, user)] = value

        def delete_password(self, service, user):
            self.saved.pop((service, user), None)

    ring = Ring()
    store = TokenStore(paths.hub_token_file, keyring=ring)
    store.set("hf_abc")
    assert store.get() == "hf_abc" and not paths.hub_token_file.exists()
    assert store.where == "the system keyring"
    store.clear()
    assert ring.saved == {}
