"""The local library: every model on this machine that Herd can load, wherever it is.

It looks, without copying, in the Hugging Face cache (where Herd downloads), in Herd's old
download folder, in LM Studio's models folder, in Ollama's store, in the folders the user
added, and at the files the user added. Herd's own records (added files and folders, last
use) live in ``paths.library_index``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.core.errors import HerdError
from app.core.gguf.info import find_projector, split_parts
from app.core.hub import cache as hub_cache
from app.core.hub.catalog import is_projector
from app.core.hub.errors import HubError
from app.core.hub.local_models import (
    LocalModel,
    Origin,
    Scan,
    dedupe,
    lmstudio_folders,
    looks_like_hf_cache,
    make_model,
    scan_folder,
    scan_hf_cache,
)
from app.core.hub.ollama_store import scan_ollama
from app.core.paths import AppPaths

__all__ = [
    "LocalModel",
    "Origin",
    "add_file",
    "add_folder",
    "delete",
    "folders",
    "list_models",
    "record_use",
    "remove_folder",
    "reveal",
    "scan",
    "sources",
]

logger = logging.getLogger(__name__)


def _read_index(paths: AppPaths) -> dict[str, Any]:
    try:
        data = json.loads(paths.library_index.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_index(paths: AppPaths, data: dict[str, Any]) -> None:
    paths.library_index.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.library_index.with_name(f"{paths.library_index.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, paths.library_index)
    finally:
        tmp.unlink(missing_ok=True)


def _strings(index: dict[str, Any], key: str) -> list[str]:
    value = index.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def sources(paths: AppPaths, cache: Path | None = None) -> list[tuple[Origin, Path]]:
    """Every folder the library looks in, the best-described first."""
    main = cache or paths.hub_cache
    found = [(Origin.HF_CACHE, main)]
    if os.path.realpath(paths.legacy_hub_cache) != os.path.realpath(main):
        found.append((Origin.HERD_OLD, paths.legacy_hub_cache))
    if paths.lmstudio_home is not None:
        found += [(Origin.LM_STUDIO, f) for f in lmstudio_folders(paths.lmstudio_home)]
    found += [(Origin.OLLAMA, store) for store in paths.ollama_models]
    found += [(Origin.FOLDER, f) for f in folders(paths)]
    return found


def _scan_source(origin: Origin, folder: Path) -> Scan:
    if origin in (Origin.HF_CACHE, Origin.HERD_OLD):
        return scan_hf_cache(folder, origin)
    if origin is Origin.OLLAMA:
        return scan_ollama(folder)
    if origin is Origin.FOLDER:
        if not folder.is_dir():
            empty = Scan()
            empty.skip(folder, "the folder is not there (a drive not connected?)", origin)
            return empty
        if (folder / "manifests").is_dir() and (folder / "blobs").is_dir():
            return scan_ollama(folder)  # the user pointed at an Ollama store
        if looks_like_hf_cache(folder):
            return scan_hf_cache(folder, origin)
    return scan_folder(folder, origin)


def scan(paths: AppPaths, cache: Path | None = None) -> Scan:
    """Every complete local model (most recently used first), and what was skipped and why."""
    index = _read_index(paths)
    found = Scan()
    for origin, folder in sources(paths, cache):
        found.extend(_scan_source(origin, folder))
    for added in _strings(index, "added"):
        path = Path(added)
        if not path.is_file():
            continue
        try:
            parts = split_parts(path)
            found.models.append(make_model(parts, Origin.ADDED, projector=find_projector(path)))
        except HerdError as exc:
            found.skip(path, exc.user_message, Origin.ADDED)
        except OSError as exc:
            found.skip(path, f"cannot be read ({exc.strerror or exc})", Origin.ADDED)
    used = index.get("last_used")
    used = used if isinstance(used, dict) else {}
    models = [
        dataclasses.replace(m, last_used=_number(used.get(str(m.path))))
        for m in dedupe(found.models)
    ]
    models.sort(key=lambda m: (-(m.last_used or 0.0), m.name.lower()))
    found.models = models
    return found


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def list_models(paths: AppPaths, cache: Path | None = None) -> list[LocalModel]:
    """Every complete local model, the most recently used first."""
    return scan(paths, cache).models


def add_file(paths: AppPaths, path: Path) -> LocalModel:
    """Add a ``.gguf`` the user has elsewhere (it stays where it is).

    Raises:
        HubError: not a ``.gguf`` file, or missing.
        HerdError: a part of a split model is missing.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file() or path.suffix.lower() != ".gguf":
        raise HubError(f"{path} is not a .gguf file.", "Choose a GGUF model file.")
    split_parts(path)  # every part is there, or the person is told which is not
    index = _read_index(paths)
    added = _strings(index, "added")
    if str(path) not in added:
        index["added"] = [*added, str(path)]
        _write_index(paths, index)
    real = os.path.realpath(path)
    for m in list_models(paths):
        if any(os.path.realpath(f) == real for f in m.files):
            return m
    raise HubError(f"{path.name} cannot be offered for loading.", "Check that it is a GGUF model.")


def folders(paths: AppPaths) -> list[Path]:
    """The folders the user asked Herd to look in, in the order they were added."""
    return [Path(f) for f in _strings(_read_index(paths), "folders")]


def add_folder(paths: AppPaths, folder: Path) -> Path:
    """Look for models in ``folder`` (and below it) from now on; returns it, resolved.

    Raises:
        HubError: it is not a folder.
    """
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise HubError(f"{folder} is not a folder.", "Choose a folder that holds .gguf files.")
    index = _read_index(paths)
    known = _strings(index, "folders")
    if str(folder) not in known:
        index["folders"] = [*known, str(folder)]
        _write_index(paths, index)
    return folder


def remove_folder(paths: AppPaths, folder: Path) -> bool:
    """Stop looking in ``folder`` (its files stay); returns whether it was in the list."""
    target = os.path.realpath(Path(folder).expanduser())
    index = _read_index(paths)
    known = _strings(index, "folders")
    kept = [f for f in known if os.path.realpath(f) != target and f != str(folder)]
    if len(kept) == len(known):
        return False
    index["folders"] = kept
    _write_index(paths, index)
    return True


def record_use(paths: AppPaths, model_path: Path, when: float | None = None) -> None:
    """Remember that ``model_path`` was just loaded (the library's "last used")."""
    index = _read_index(paths)
    used = index.get("last_used")
    index["last_used"] = used = used if isinstance(used, dict) else {}
    used[str(model_path)] = when if when is not None else time.time()
    _write_index(paths, index)


_NOT_OURS = {
    Origin.LM_STUDIO: (
        "LM Studio's models folder",
        "Delete it in LM Studio (My Models), or delete the file yourself.",
    ),
    Origin.OLLAMA: ("Ollama's store", "Remove it with: ollama rm {name}"),
    Origin.FOLDER: (
        "one of your folders",
        "Delete the file yourself, or stop Herd looking there: herd models --remove-folder DIR",
    ),
}


def delete(paths: AppPaths, model: LocalModel) -> int:
    """Delete a download (its blobs too, unless another snapshot uses them); returns bytes freed.

    A file the user added is only forgotten, never deleted.

    Raises:
        HubError: the model belongs to another app or to a folder of the user's: Herd
            deletes only what it can download again.
    """
    if not model.origin.deletable and model.origin is not Origin.ADDED:
        where, hint = _NOT_OURS[model.origin]
        raise HubError(
            f"{model.name} is in {where}; Herd deletes only models it can download again.",
            hint.format(name=model.name),
        )
    index = _read_index(paths)
    used = index.get("last_used")
    if isinstance(used, dict):
        used.pop(str(model.path), None)
    if model.origin is Origin.ADDED:
        index["added"] = [a for a in _strings(index, "added") if Path(a) != model.path]
        _write_index(paths, index)
        return 0
    _write_index(paths, index)
    snapshot = _snapshot_of(model.path)
    if snapshot is None:
        raise HubError(f"{model.path} is not in a Hugging Face cache.", "Delete it yourself.")
    root = snapshot.parent.parent.parent  # <root>/models--o--n/snapshots/<commit>
    freed = hub_cache.remove_files(root, list(model.files))
    if snapshot.is_dir():
        rest = [p for p in snapshot.rglob("*.gguf") if p.is_file()]
        if all(is_projector(p.name) for p in rest):  # a projector no model uses any more
            freed += hub_cache.remove_files(root, rest)
    logger.info("deleted %s (%d bytes freed)", model.name, freed)
    return freed


def _snapshot_of(path: Path) -> Path | None:
    for parent in path.parents:
        if parent.parent.name == "snapshots":
            return parent
    return None


def reveal_command(path: Path, platform: str = sys.platform) -> list[str]:
    """The command that shows ``path`` in the platform's file manager."""
    if platform == "darwin":
        return ["open", "-R", str(path)]
    if platform.startswith("win"):
        return ["explorer", f"/select,{path}"]
    return ["xdg-open", str(path.parent)]


def reveal(path: Path, runner: Callable[[list[str]], object] | None = None) -> None:
    """Show ``path`` in the file manager (without waiting for it)."""
    argv = reveal_command(path)
    if runner is not None:
        runner(argv)
        return
    try:
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    except OSError as exc:
        raise HubError(f"Cannot open the file manager ({argv[0]}).", str(path)) from exc
