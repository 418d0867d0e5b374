"""Models other apps keep, found where they are: LM Studio, Ollama, folders the user adds.

The layouts are the recorded ones in ``tests/hub/data``; nothing is copied, Ollama's
models show by their Ollama names, and what cannot be used is skipped with a reason.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from app.core.gguf.info import read_gguf, require_supported
from app.core.hub import library
from app.core.hub.errors import HubError
from app.core.hub.local_models import Origin, scan_folder
from app.core.hub.ollama_store import ollama_name, scan_ollama
from app.core.paths import AppPaths, lmstudio_home
from tests.hub.hub_server import gguf_bytes
from tests.hub.layouts import build_lmstudio, build_ollama, recorded


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    """Herd's folders in a temporary directory, looking at no other app yet."""
    return AppPaths.under(tmp_path / "herd").ensure()


def test_lmstudio_models_are_found_where_they_are(paths, tmp_path, tiny_scout):
    home = build_lmstudio(tmp_path / "machine", tiny_scout)
    paths = dataclasses.replace(paths, lmstudio_home=lmstudio_home(home))
    expect = recorded("lmstudio_layout.json")["expect"]
    found = library.scan(paths)
    models = {m.name: m for m in found.models}
    assert set(models) == set(expect["models"])
    for name, want in expect["models"].items():
        m = models[name]
        assert (m.quant, m.n_parts, m.origin) == (want["quant"], want["parts"], Origin.LM_STUDIO)
        assert m.path.is_relative_to(tmp_path / "machine")  # where it is: nothing copied
        assert (m.projector.name if m.projector else None) == want["projector"]
        assert m.where == "LM Studio" and m.source == "lmstudio" and m.repo_id is None
    [(skipped, why)] = [(s.path.name, s.reason) for s in found.skipped]
    assert why.startswith(expect["skipped"][skipped])
    # the moved folder (settings' downloadsFolder) holds a real model Herd can read
    moved = models["Llama-4-Scout-17B-16E-Instruct-Q8_0"]
    assert "external-drive" in moved.path.parts
    require_supported(read_gguf(moved.path))
    assert not list(paths.hub_cache.rglob("*.gguf"))

    with pytest.raises(HubError) as refused:
        library.delete(paths, moved)
    assert "LM Studio" in refused.value.hint and moved.path.is_file()


def test_ollama_models_show_by_name_with_their_projector(paths, tmp_path, tiny_scout):
    store = build_ollama(tmp_path / "ollama" / "models", tiny_scout)
    paths = dataclasses.replace(paths, ollama_models=(store.root,))
    expect = store.description["expect"]
    found = library.scan(paths)
    models = {m.name: m for m in found.models}
    assert set(models) == set(expect["models"])  # llama4:latest is llama4:scout's alias
    for name, want in expect["models"].items():
        m = models[name]
        assert m.path == store.blobs[want["weights"][1:]] and m.files == (m.path,)
        assert m.quant == want["quant"] and m.origin is Origin.OLLAMA
        assert m.projector == (store.blobs[want["projector"][1:]] if want["projector"] else None)
        assert not any(d in m.name for d in store.digests.values())  # a name, never a hash
    skipped = {s.path.relative_to(store.root / "manifests").as_posix(): s for s in found.skipped}
    assert set(skipped) == set(expect["skipped"])
    for rel, words in expect["skipped"].items():
        assert words in skipped[rel].reason and skipped[rel].origin is Origin.OLLAMA
        assert skipped[rel].name == ollama_name(*rel.split("/"))
        assert str(skipped[rel]).startswith(f"Ollama's {skipped[rel].name}: ")

    scout = models["llama4:scout"]
    assert scout.path.name.startswith("sha256-") and scout.path.suffix == ""
    info = read_gguf(scout.path)  # a blob has no .gguf suffix: it reads and passes all the same
    require_supported(info)
    assert info.path == scout.path and info.parts == (scout.path,)
    with pytest.raises(HubError) as refused:
        library.delete(paths, scout)
    assert refused.value.hint == "Remove it with: ollama rm llama4:scout"
    assert scout.path.is_file()


def _deny(monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
    """Reading ``target`` fails as without permission (chmod does not stop root)."""
    read_text, scandir = Path.read_text, os.scandir

    def read_text_denied(self: Path, *args: object, **kwargs: object) -> str:
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    def scandir_denied(path: object) -> object:
        if Path(str(path)) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text_denied)
    monkeypatch.setattr(os, "scandir", scandir_denied)


def test_an_unreadable_ollama_manifest_is_skipped_not_raised(tmp_path, tiny_scout, monkeypatch):
    store = build_ollama(tmp_path / "models", tiny_scout)
    manifest = store.manifest("registry.ollama.ai/library/llama4/scout")
    _deny(monkeypatch, manifest)
    found = scan_ollama(store.root)
    names = {m.name for m in found.models}
    assert "llama4:latest" in names and "llama4:scout" not in names  # the alias still reads
    [reason] = [s.reason for s in found.skipped if s.path == manifest]
    assert reason == "its manifest cannot be read (Permission denied)"
    assert scan_ollama(tmp_path / "no-ollama-here").models == []


@pytest.mark.parametrize(
    ("host", "namespace", "model", "tag", "shown"),
    [
        ("registry.ollama.ai", "library", "llama4", "scout", "llama4:scout"),
        ("registry.ollama.ai", "someone", "my-llama", "latest", "someone/my-llama:latest"),
        ("hf.co", "unsloth", "Scout-GGUF", "Q4_K_M", "hf.co/unsloth/Scout-GGUF:Q4_K_M"),
    ],
)
def test_ollama_names_are_the_ones_ollama_list_shows(host, namespace, model, tag, shown):
    assert ollama_name(host, namespace, model, tag) == shown


def _tree(root: Path) -> None:
    """A user's folder: a split model, its projector, a deep file, a hidden and a stray one."""
    (root / "scout").mkdir(parents=True)
    for i in (1, 2):
        part = root / "scout" / f"Llama-4-Scout-Q4_K_M-0000{i}-of-00002.gguf"
        part.write_bytes(gguf_bytes(1000, i))
    (root / "scout" / "mmproj-Llama-4-Scout-F16.gguf").write_bytes(gguf_bytes(300, 3))
    deep = root.joinpath(*"abcdefgh")
    deep.mkdir(parents=True)
    (deep / "Too-Deep-Q8_0.gguf").write_bytes(gguf_bytes(100, 4))
    (root / ".trash").mkdir()
    (root / ".trash" / "Old-Q2_K.gguf").write_bytes(gguf_bytes(100, 5))
    (root / "notes.txt").write_text("not a model", encoding="utf-8")


def test_a_folder_the_user_adds_is_searched_below_with_split_models_as_one(paths, tmp_path):
    mine = tmp_path / "my models"
    _tree(mine)
    assert library.add_folder(paths, mine) == mine.resolve()
    assert library.add_folder(paths, mine) == mine.resolve()  # once only
    assert library.folders(paths) == [mine.resolve()]
    assert not list(paths.library_index.parent.glob("*.tmp"))  # written atomically
    [model] = library.list_models(paths)
    assert model.name == "Llama-4-Scout-Q4_K_M" and model.n_parts == 2 and model.size == 2000
    assert model.projector == mine.resolve() / "scout" / "mmproj-Llama-4-Scout-F16.gguf"
    assert model.origin is Origin.FOLDER and model.where == "your folder"
    deeper = scan_folder(mine, Origin.FOLDER, max_depth=10)
    assert "Too-Deep-Q8_0" in {m.name for m in deeper.models}
    assert "Old-Q2_K" not in {m.name for m in deeper.models}  # hidden folders are not entered

    with pytest.raises(HubError):
        library.delete(paths, model)
    assert library.remove_folder(paths, mine) and library.list_models(paths) == []
    assert not library.remove_folder(paths, mine)
    with pytest.raises(HubError, match="is not a folder"):
        library.add_folder(paths, mine / "scout" / "mmproj-Llama-4-Scout-F16.gguf")


def test_a_folder_that_is_another_apps_store_is_read_as_one(paths, tmp_path, tiny_scout):
    store = build_ollama(tmp_path / "elsewhere" / "models", tiny_scout)
    library.add_folder(paths, store.root)
    names = {m.name for m in library.list_models(paths)}
    assert "llama4:scout" in names and not any(n.startswith("sha256") for n in names)


def test_a_missing_folder_is_skipped_with_a_reason(paths, tmp_path):
    drive = tmp_path / "usb"
    drive.mkdir()
    library.add_folder(paths, drive)
    drive.rmdir()
    found = library.scan(paths)
    assert found.models == [] and "not there" in found.skipped[0].reason


def test_an_unreadable_folder_does_not_hide_the_rest(paths, tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    _tree(mine)
    (mine / "locked").mkdir()
    library.add_folder(paths, mine)
    locked = mine.resolve() / "locked"
    _deny(monkeypatch, locked)
    found = library.scan(paths)
    assert [m.name for m in found.models] == ["Llama-4-Scout-Q4_K_M"]
    reasons = [s.reason for s in found.skipped if s.path == locked]
    assert reasons == ["cannot be read (Permission denied)"]


def test_the_same_file_is_listed_once(paths, tmp_path):
    mine = tmp_path / "mine"
    _tree(mine)
    library.add_folder(paths, mine)
    added = library.add_file(paths, mine / "scout" / "Llama-4-Scout-Q4_K_M-00001-of-00002.gguf")
    assert added.origin is Origin.FOLDER  # found in the folder first
    library.add_folder(paths, mine / "scout")
    assert len(library.list_models(paths)) == 1


def test_an_ollama_model_loads_with_the_projector_its_manifest_pairs(
    tmp_path: Path, tiny_scout: Path
) -> None:
    """The load job takes the projector from Ollama's manifest (no mmproj file beside it)."""
    from app.core.load import paired_projector

    store = build_ollama(tmp_path / "models", tiny_scout)
    weights, projector = store.blobs["scout-weights"], store.blobs["scout-projector"]
    assert paired_projector(weights) == projector
    assert paired_projector(store.blobs["hf-weights"]) is None  # its manifest has none
    assert paired_projector(tiny_scout) is None  # not in a store: the mmproj beside it rules
