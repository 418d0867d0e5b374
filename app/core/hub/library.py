"""The local models: downloads in the Hugging Face cache and files the user added.

A split model is one entry that loads from its first part, offered only when every part is
present (a part that failed verification never reaches the cache, so a damaged model is
never offered). Herd's own records (added files, last use) live in ``paths.library_index``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import HerdError
from app.core.gguf.info import split_parts
from app.core.hub import cache as hub_cache
from app.core.hub.catalog import SPLIT_RE, is_projector, quant_name
from app.core.hub.errors import HubError
from app.core.paths import AppPaths

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LocalModel:
    """One loadable model on this machine."""

    path: Path  # what to load: the file, or the first part of a split model
    name: str
    quant: str
    size: int  # bytes on disk, all parts
    files: tuple[Path, ...]
    repo_id: str | None = None  # None: a file the user added
    last_used: float | None = None
    projector: Path | None = None

    @property
    def n_parts(self) -> int:
        """How many files make the model."""
        return len(self.files)

    @property
    def source(self) -> str:
        """``owner/name`` for a download, ``added`` for a user's file."""
        return self.repo_id or "added"


def _read_index(paths: AppPaths) -> dict:
    try:
        data = json.loads(paths.library_index.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_index(paths: AppPaths, data: dict) -> None:
    paths.library_index.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.library_index.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, paths.library_index)


def _group(files: Sequence[Path]) -> list[tuple[Path, ...]]:
    """Model files grouped into models (split parts together, complete sets only)."""
    groups: dict[str, list[Path]] = {}
    for f in files:
        if f.name.lower().endswith(".gguf") and not is_projector(f.name):
            groups.setdefault(str(f.parent / SPLIT_RE.sub("", f.name)), []).append(f)
    models = []
    for members in groups.values():
        members.sort(key=lambda p: p.name)
        m = SPLIT_RE.search(members[0].name)
        if m and (int(m[1]) != 1 or len(members) != int(m[2])):
            logger.info("incomplete split model %s: not offered", members[0].name)
            continue
        models.append(tuple(members))
    return models


def _projector(snapshot: Path, model: Path) -> Path | None:
    projectors = sorted(p for p in snapshot.rglob("*.gguf") if is_projector(p.name))
    near = [p for p in projectors if p.parent == model.parent]
    found = near or projectors
    return found[0] if found else None


def list_models(paths: AppPaths, cache: Path | None = None) -> list[LocalModel]:
    """Every complete local model, the most recently used first."""
    cache = cache or paths.hub_cache
    index = _read_index(paths)
    used: dict[str, float] = index.get("last_used", {})
    models: list[LocalModel] = []
    for repo in sorted(cache.glob("models--*")):
        repo_id = repo.name.removeprefix("models--").replace("--", "/")
        for snapshot in sorted((repo / "snapshots").glob("*")):
            files = [p for p in snapshot.rglob("*") if p.is_file()]
            for group in _group(files):
                models.append(_model(group, repo_id, used, _projector(snapshot, group[0])))
    for added in index.get("added", []):
        path = Path(added)
        if path.is_file():
            try:
                parts = split_parts(path)
            except HerdError:
                continue
            models.append(_model(parts, None, used, _projector(path.parent, path)))
    models.sort(key=lambda m: (-(m.last_used or 0.0), m.name.lower()))
    return models


def _model(
    parts: Sequence[Path], repo_id: str | None, used: dict[str, float], projector: Path | None
) -> LocalModel:
    first = parts[0]
    name = SPLIT_RE.sub("", first.name).removesuffix(".gguf")
    return LocalModel(
        path=first,
        name=name,
        quant=quant_name(first.name),
        size=sum(p.stat().st_size for p in parts),
        files=tuple(parts),
        repo_id=repo_id,
        last_used=used.get(str(first)),
        projector=projector,
    )


def add_file(paths: AppPaths, path: Path) -> LocalModel:
    """Add a ``.gguf`` the user has elsewhere (it stays where it is).

    Raises:
        HubError: not a ``.gguf`` file, or missing.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file() or path.suffix.lower() != ".gguf":
        raise HubError(f"{path} is not a .gguf file.", "Choose a GGUF model file.")
    index = _read_index(paths)
    added = index.setdefault("added", [])
    if str(path) not in added:
        added.append(str(path))
        _write_index(paths, index)
    return next(m for m in list_models(paths) if path in m.files)


def record_use(paths: AppPaths, model_path: Path, when: float | None = None) -> None:
    """Remember that ``model_path`` was just loaded (the library's "last used")."""
    index = _read_index(paths)
    index.setdefault("last_used", {})[str(model_path)] = when if when is not None else time.time()
    _write_index(paths, index)


def delete(paths: AppPaths, model: LocalModel) -> int:
    """Delete a download (its blobs too, unless another snapshot uses them); returns bytes freed.

    A file the user added is only forgotten, never deleted.
    """
    index = _read_index(paths)
    index.get("last_used", {}).pop(str(model.path), None)
    if model.repo_id is None:
        index["added"] = [a for a in index.get("added", []) if Path(a) != model.path]
        _write_index(paths, index)
        return 0
    _write_index(paths, index)
    snapshot = _snapshot_of(model.path)
    freed = hub_cache.remove_files(paths.hub_cache, list(model.files))
    if snapshot is not None and snapshot.is_dir():
        rest = [p for p in snapshot.rglob("*.gguf") if p.is_file()]
        if all(is_projector(p.name) for p in rest):  # a projector no model uses any more
            freed += hub_cache.remove_files(paths.hub_cache, rest)
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
