"""Models already on this machine, read where they are: Hugging Face caches and folders.

Nothing is copied: each entry points at its files. A split model is one entry that loads
from its first part, offered only when every part is present (a part that failed
verification never reaches the cache, so a damaged download is never offered); an
``mmproj`` file is a projector, never a model. What cannot be offered is skipped with its
reason, never raised: one unreadable folder must not hide the rest of the library.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from app.core.gguf.info import find_projector
from app.core.hub.catalog import SPLIT_RE, is_projector, quant_name

logger = logging.getLogger(__name__)

MAX_DEPTH = 6  # folders below a root that a scan descends (LM Studio needs 2)
MAX_FOLDERS = 20_000  # a scan of a whole disk stops here, and says so


class Origin(Enum):
    """Where a local model was found."""

    HF_CACHE = "hf-cache"  # the standard Hugging Face cache, where Herd downloads
    HERD_OLD = "herd-old"  # Herd's own download folder before it used the standard cache
    LM_STUDIO = "lmstudio"
    OLLAMA = "ollama"
    FOLDER = "folder"  # a folder the user asked Herd to look in
    ADDED = "added"  # one file the user opened or added

    @property
    def label(self) -> str:
        """How the window and ``herd models`` name it."""
        return _LABELS[self]

    @property
    def deletable(self) -> bool:
        """Whether Herd may delete the files (only downloads in a Hugging Face cache)."""
        return self in (Origin.HF_CACHE, Origin.HERD_OLD)


_LABELS = {
    Origin.HF_CACHE: "Hugging Face cache",
    Origin.HERD_OLD: "Herd's old folder",
    Origin.LM_STUDIO: "LM Studio",
    Origin.OLLAMA: "Ollama",
    Origin.FOLDER: "your folder",
    Origin.ADDED: "added file",
}


@dataclass(frozen=True, slots=True)
class LocalModel:
    """One loadable model on this machine."""

    path: Path  # what to load: the file, or the first part of a split model
    name: str
    quant: str
    size: int  # bytes on disk, all parts
    files: tuple[Path, ...]
    repo_id: str | None = None  # ``owner/name`` of a model in a Hugging Face cache
    last_used: float | None = None
    projector: Path | None = None
    origin: Origin = Origin.ADDED

    @property
    def n_parts(self) -> int:
        """How many files make the model."""
        return len(self.files)

    @property
    def source(self) -> str:
        """``owner/name`` for a Hugging Face download, else the origin (``added``, ``ollama``)."""
        return self.repo_id or self.origin.value

    @property
    def where(self) -> str:
        """Where it was found, in words: ``Hugging Face cache: owner/name``, ``Ollama``."""
        return f"{self.origin.label}: {self.repo_id}" if self.repo_id else self.origin.label


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something that looked like a model but cannot be offered, and why."""

    path: Path
    reason: str
    origin: Origin
    name: str = ""  # what its app calls it (``llama4:scout``), when it has a name

    def __str__(self) -> str:
        where = f"{self.origin.label}'s {self.name}" if self.name else str(self.path)
        return f"{where}: {self.reason}"


@dataclass(slots=True)
class Scan:
    """What a look at one or more folders found."""

    models: list[LocalModel] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def extend(self, other: Scan) -> None:
        """Add what ``other`` found."""
        self.models.extend(other.models)
        self.skipped.extend(other.skipped)

    def skip(self, path: Path, reason: str, origin: Origin, name: str = "") -> None:
        """Note one thing that cannot be offered (logged too)."""
        skipped = Skipped(path, reason, origin, name)
        logger.info("library: skipped %s (%s)", skipped, path)
        self.skipped.append(skipped)


def make_model(
    parts: Sequence[Path],
    origin: Origin,
    *,
    repo_id: str | None = None,
    projector: Path | None = None,
    name: str | None = None,
    quant: str | None = None,
) -> LocalModel:
    """A model from its files (split parts in order).

    Raises:
        OSError: a part cannot be read (the caller skips the model).
    """
    first = parts[0]
    stem = re.sub(r"\.gguf$", "", SPLIT_RE.sub("", first.name), flags=re.IGNORECASE)
    return LocalModel(
        path=first,
        name=name if name is not None else stem,
        quant=quant if quant is not None else quant_name(first.name),
        size=sum(p.stat().st_size for p in parts),
        files=tuple(parts),
        repo_id=repo_id,
        projector=projector,
        origin=origin,
    )


def group_files(files: Sequence[Path], scan: Scan, origin: Origin) -> list[tuple[Path, ...]]:
    """GGUF files grouped into models: split parts together, complete sets only."""
    groups: dict[str, list[Path]] = {}
    for f in files:
        if f.name.lower().endswith(".gguf") and not is_projector(f.name):
            groups.setdefault(str(f.parent / SPLIT_RE.sub("", f.name)), []).append(f)
    models = []
    for members in groups.values():
        members.sort(key=lambda p: p.name)
        m = SPLIT_RE.search(members[0].name)
        if m and (int(m[1]) != 1 or len(members) != int(m[2])):
            have = len(members)
            scan.skip(members[0], f"only {have} of the {int(m[2])} parts are there", origin)
            continue
        models.append(tuple(members))
    return models


def scan_hf_cache(cache: Path, origin: Origin) -> Scan:
    """The complete GGUF models in a Hugging Face cache (``models--owner--name/snapshots``)."""
    scan = Scan()
    try:
        repos = sorted(cache.glob("models--*"))
    except OSError as exc:
        scan.skip(cache, f"cannot be read ({exc.strerror or exc})", origin)
        return scan
    for repo in repos:
        repo_id = repo.name.removeprefix("models--").replace("--", "/")
        for snapshot in sorted((repo / "snapshots").glob("*")):
            try:  # a link to a missing blob is not a file: an incomplete download is left out
                files = [p for p in snapshot.rglob("*") if p.is_file()]
                for group in group_files(files, scan, origin):
                    near = _snapshot_projector(snapshot, group[0])
                    scan.models.append(make_model(group, origin, repo_id=repo_id, projector=near))
            except OSError as exc:
                scan.skip(snapshot, f"cannot be read ({exc.strerror or exc})", origin)
    return scan


def _snapshot_projector(snapshot: Path, model: Path) -> Path | None:
    projectors = sorted(p for p in snapshot.rglob("*.gguf") if is_projector(p.name))
    near = [p for p in projectors if p.parent == model.parent]
    found = near or projectors
    return found[0] if found else None


def scan_folder(root: Path, origin: Origin, max_depth: int = MAX_DEPTH) -> Scan:
    """The GGUF models in a folder tree (``max_depth`` folders deep), where they are.

    Each model's projector is the one loading it would pick (the ``mmproj`` beside it).
    Hidden folders are not entered; a linked folder is entered once.
    """
    scan = Scan()
    files = list(_gguf_files(root, origin, max_depth, scan))
    for group in group_files(files, scan, origin):
        try:
            scan.models.append(make_model(group, origin, projector=find_projector(group[0])))
        except OSError as exc:
            scan.skip(group[0], f"cannot be read ({exc.strerror or exc})", origin)
    return scan


def _gguf_files(root: Path, origin: Origin, max_depth: int, scan: Scan) -> Iterator[Path]:
    seen: set[str] = set()
    pending = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        real = os.path.realpath(folder)
        if real in seen:
            continue
        seen.add(real)
        if len(seen) > MAX_FOLDERS:
            scan.skip(root, f"has over {MAX_FOLDERS} folders; the rest was not searched", origin)
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            scan.skip(folder, f"cannot be read ({exc.strerror or exc})", origin)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    if depth < max_depth:
                        pending.append((Path(entry.path), depth + 1))
                elif entry.name.lower().endswith(".gguf") and entry.is_file():
                    yield Path(entry.path)
            except OSError:  # vanished while listing, or a broken link
                continue


def looks_like_hf_cache(folder: Path) -> bool:
    """Whether ``folder`` is a Hugging Face cache (it holds ``models--owner--name``)."""
    try:
        return any(p.is_dir() for p in folder.glob("models--*"))
    except OSError:
        return False


def lmstudio_folders(home: Path) -> list[Path]:
    """LM Studio's models folders that exist: the one it is set to use, and ``home/models``.

    LM Studio documents ``~/.lmstudio/models/<publisher>/<model>/*.gguf``; a folder chosen
    in its settings is kept as ``downloadsFolder`` in ``home/settings.json`` (seen in
    LM Studio's files, not documented), so it is read only when it names a folder.
    """
    found = []
    try:
        chosen = json.loads((home / "settings.json").read_text(encoding="utf-8"))
        folder = chosen.get("downloadsFolder") if isinstance(chosen, dict) else None
        if isinstance(folder, str) and folder.strip():
            found.append(Path(folder).expanduser())
    except (OSError, UnicodeDecodeError, ValueError):
        pass
    found.append(home / "models")
    out: list[Path] = []
    for f in found:
        if f.is_dir() and not any(_same(f, o) for o in out):
            out.append(f)
    return out


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def dedupe(models: Sequence[LocalModel]) -> list[LocalModel]:
    """One entry per file: the first wins (callers list the better-described sources first)."""
    seen: set[str] = set()
    out = []
    for m in models:
        key = os.path.realpath(m.path)
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out
