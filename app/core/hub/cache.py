"""The standard Hugging Face cache layout (blobs, snapshots, refs), written and read by Herd.

A verified download becomes ``models--{owner}--{name}/blobs/{sha256}``, linked from
``snapshots/{commit}/{filename}``, with ``refs/{revision}`` naming the commit, exactly as
``hf_hub_download`` leaves it, so other tools (llama.cpp's ``-hf``, transformers,
``hf cache scan``) see and share the same files.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub.file_download import repo_folder_name

from app.core.hub.client import RemoteFile

logger = logging.getLogger(__name__)


def repo_dir(cache: Path, repo_id: str) -> Path:
    """``cache/models--owner--name``."""
    return cache / repo_folder_name(repo_id=repo_id, repo_type="model")


def snapshot_path(cache: Path, repo_id: str, commit: str, filename: str) -> Path:
    """Where ``filename`` of ``commit`` appears in the cache."""
    return repo_dir(cache, repo_id) / "snapshots" / commit / filename


def cached_commit(cache: Path, repo_id: str, revision: str) -> str | None:
    """The commit ``refs/{revision}`` names, or ``revision`` itself when it is a commit."""
    ref = repo_dir(cache, repo_id) / "refs" / revision
    try:
        return ref.read_text(encoding="utf-8").strip() or None
    except OSError:
        snap = repo_dir(cache, repo_id) / "snapshots" / revision
        return revision if snap.is_dir() else None


def find_cached(cache: Path, repo_id: str, filename: str, revision: str = "main") -> Path | None:
    """The cached copy of a file at ``revision``, if there is a complete one."""
    commit = cached_commit(cache, repo_id, revision)
    if commit is None:
        return None
    path = snapshot_path(cache, repo_id, commit, filename)
    return path if path.is_file() else None


def find_complete(
    cache: Path, repo_id: str, remote: RemoteFile, revisions: Sequence[str]
) -> Path | None:
    """The cached copy of ``remote`` at the first of ``revisions`` that has it, if complete."""
    for revision in revisions:
        path = find_cached(cache, repo_id, remote.name, revision)
        if path is not None:
            return path if path.stat().st_size == remote.size else None
    return None


def store(
    cache: Path,
    repo_id: str,
    revision: str,
    commit: str,
    filename: str,
    blob_name: str,
    source: Path,
) -> Path:
    """Move the verified file ``source`` into the cache; returns its snapshot path."""
    repo = repo_dir(cache, repo_id)
    blob = repo / "blobs" / blob_name
    pointer = repo / "snapshots" / commit / filename
    blob.parent.mkdir(parents=True, exist_ok=True)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    _move(source, blob)
    if pointer.is_symlink() or pointer.exists():
        pointer.unlink()
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    except OSError:  # no symlinks (Windows without developer mode): the file itself
        logger.info("symlinks unavailable; storing %s in the snapshot", filename)
        _move(blob, pointer)
    if revision != commit:
        ref = repo / "refs" / revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit, encoding="utf-8")
    return pointer


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError:  # another file system
        shutil.move(os.fspath(source), os.fspath(target))


def remove_files(cache: Path, pointers: list[Path]) -> int:
    """Remove snapshot entries and every blob no other snapshot uses; returns bytes freed."""
    freed = 0
    for pointer in pointers:
        blob = pointer.resolve() if pointer.is_symlink() else None
        if pointer.is_symlink() or pointer.exists():
            if blob is None:
                freed += pointer.stat().st_size
            pointer.unlink()
        if blob is not None and blob.exists() and not _still_linked(pointer, blob):
            freed += blob.stat().st_size
            blob.unlink()
    for pointer in pointers:
        _prune_empty(pointer.parent, stop=cache)
    return freed


def _still_linked(pointer: Path, blob: Path) -> bool:
    repo = _repo_of(pointer)
    if repo is None:
        return False
    for other in (repo / "snapshots").rglob("*"):
        if other.is_symlink() and other.resolve() == blob:
            return True
    return False


def _repo_of(pointer: Path) -> Path | None:
    for parent in pointer.parents:
        if parent.name == "snapshots":
            return parent.parent
    return None


def _prune_empty(folder: Path, stop: Path) -> None:
    """Remove empty folders up to a repo's ``snapshots`` (a repo with no snapshot: all of it)."""
    while folder != stop and stop in folder.parents:
        if folder.name == "snapshots":
            if not any(folder.iterdir()):
                shutil.rmtree(folder.parent, ignore_errors=True)
            return
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
