"""The Llama 4 GGUF catalog: curated repositories, Hub search, and each repository's quants.

A quant is one loadable model: a single ``.gguf`` or a split set
(``*-00001-of-0000N.gguf``) counted as one entry with the total size. Projector files
(``mmproj*``) are listed apart. Offline, a repository's quants come from the local cache.
A repository's card (:func:`repo_card`) adds what the Model Manager shows about it: the
model's parameter counts (Meta's model cards, recognised from the name), its licence and
downloads (the Hub's model info) and whether it can see images (it has a projector).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.core.hub import cache as hub_cache
from app.core.hub.client import HubClient, RemoteFile, RepoListing, RepoSummary
from app.core.hub.errors import HubOfflineError, RepoNotFoundError


@dataclass(frozen=True, slots=True)
class CuratedRepo:
    """A repository Herd recommends, with what it holds."""

    repo_id: str
    family: str  # "Scout" or "Maverick"
    publisher: str
    note: str = ""


CURATED: tuple[CuratedRepo, ...] = (
    CuratedRepo(
        "unsloth/Llama-4-Scout-17B-16E-Instruct-GGUF", "Scout", "unsloth", "dynamic UD quants"
    ),
    CuratedRepo("bartowski/meta-llama_Llama-4-Scout-17B-16E-Instruct-GGUF", "Scout", "bartowski"),
    CuratedRepo("lmstudio-community/Llama-4-Scout-17B-16E-Instruct-GGUF", "Scout", "LM Studio"),
    CuratedRepo("ggml-org/Llama-4-Scout-17B-16E-Instruct-GGUF", "Scout", "ggml-org"),
    CuratedRepo(
        "unsloth/Llama-4-Maverick-17B-128E-Instruct-GGUF", "Maverick", "unsloth", "dynamic UD"
    ),
    CuratedRepo(
        "bartowski/meta-llama_Llama-4-Maverick-17B-128E-Instruct-GGUF", "Maverick", "bartowski"
    ),
    CuratedRepo(
        "lmstudio-community/Llama-4-Maverick-17B-128E-Instruct-GGUF", "Maverick", "LM Studio"
    ),
)


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """A Llama 4 model's size, from Meta's model cards."""

    family: str  # "Scout"
    total: str  # "109B" parameters in all
    active: str  # "17B" parameters used per token
    experts: int  # routed experts per MoE layer

    def text(self) -> str:
        """``109B total, 17B active, 16 experts``."""
        return f"{self.total} total, {self.active} active, {self.experts} experts"


SCOUT_FACTS = ModelFacts("Scout", "109B", "17B", 16)
MAVERICK_FACTS = ModelFacts("Maverick", "400B", "17B", 128)

# The Hub's licence ids, as their owners name them; others are shown as they are.
LICENCES = {
    "llama4": "Llama 4 Community License",
    "llama3.3": "Llama 3.3 Community License",
    "llama3.2": "Llama 3.2 Community License",
    "llama3.1": "Llama 3.1 Community License",
    "apache-2.0": "Apache 2.0",
    "mit": "MIT",
    "gemma": "Gemma Terms of Use",
    "other": "its own licence (see the model card)",
}


def model_facts(name: str) -> ModelFacts | None:
    """Scout's or Maverick's facts for a repository or file name, else None."""
    low = name.lower()
    if "maverick" in low or "17b-128e" in low:
        return MAVERICK_FACTS
    if "scout" in low or "17b-16e" in low:
        return SCOUT_FACTS
    return None


def licence_name(licence: str) -> str:
    """A licence id in words (``llama4``: ``Llama 4 Community License``); "" stays ""."""
    return LICENCES.get(licence.lower(), licence)


def curated(repo_id: str) -> CuratedRepo | None:
    """The curated entry for ``repo_id``, if Herd recommends it."""
    return next((c for c in CURATED if c.repo_id == repo_id), None)


SPLIT_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
QUANT_RE = re.compile(
    r"(?:UD-)?(?:I?Q\d_[A-Z0-9]+(?:_[A-Z0-9]+)*|Q\d_\d|TQ\d_\d|BF16|F16|F32|MXFP4)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class QuantOption:
    """One loadable model of a repository: one file or all parts of a split file."""

    repo_id: str
    quant: str  # "Q4_K_M", "UD-Q4_K_XL"; the file stem when no quant name is found
    files: tuple[RemoteFile, ...]  # split parts in order; the first is what llama.cpp opens

    @property
    def size(self) -> int:
        """Bytes on disk, all parts together."""
        return sum(f.size for f in self.files)

    @property
    def first_file(self) -> str:
        """The file to load (part 1 of a split model)."""
        return self.files[0].name

    @property
    def n_parts(self) -> int:
        """How many files make this model."""
        return len(self.files)


@dataclass(frozen=True, slots=True)
class RepoQuants:
    """A repository's quants (smallest first) and projector files, at one commit."""

    repo_id: str
    commit: str
    quants: tuple[QuantOption, ...]
    projectors: tuple[RemoteFile, ...]
    gated: bool = False
    from_cache: bool = False
    license: str = ""  # the Hub's licence id; "" when unknown (offline, or not stated)
    downloads: int | None = None  # last 30 days, from the Hub; None offline

    @property
    def vision(self) -> bool:
        """Whether the repository has a vision projector (the model can see images)."""
        return bool(self.projectors)

    def find(self, quant: str) -> QuantOption:
        """The quant named ``quant`` (case does not matter).

        Raises:
            RepoNotFoundError: the repository has no such quant.
        """
        for option in self.quants:
            if option.quant.lower() == quant.lower():
                return option
        names = ", ".join(q.quant for q in self.quants) or "none"
        if self.from_cache:
            raise RepoNotFoundError(
                f"{quant} of {self.repo_id} is not downloaded, and the Hub cannot be reached.",
                f"Downloaded quants: {names}.",
            )
        raise RepoNotFoundError(
            f"{self.repo_id} has no {quant} quant.", f"Available quants: {names}."
        )

    def projector_for(self, option: QuantOption) -> RemoteFile | None:
        """The projector to fetch with ``option``: the F16 one if there is a choice."""
        if not self.projectors:
            return None
        folder = PurePosixPath(option.first_file).parent
        same = [p for p in self.projectors if PurePosixPath(p.name).parent == folder]
        pool = same or list(self.projectors)
        preferred = [p for p in pool if "f16" in p.name.lower()]
        return (preferred or pool)[0]


def quant_name(filename: str) -> str:
    """The quantization in a GGUF's file name (``UD-Q4_K_XL``), or its stem."""
    stem = SPLIT_RE.sub("", PurePosixPath(filename).name)
    stem = re.sub(r"\.gguf$", "", stem, flags=re.IGNORECASE)
    found = list(QUANT_RE.finditer(stem))
    if not found:
        return stem
    return found[-1].group(0).upper()


def is_projector(filename: str) -> bool:
    """Whether a file is a vision projector."""
    return "mmproj" in PurePosixPath(filename).name.lower()


def group_quants(listing: RepoListing, from_cache: bool = False) -> RepoQuants:
    """Group a repository's GGUF files into quants (split parts together) and projectors."""
    groups: dict[str, list[RemoteFile]] = {}
    projectors: list[RemoteFile] = []
    for f in listing.files:
        if not f.name.lower().endswith(".gguf"):
            continue
        if is_projector(f.name):
            projectors.append(f)
            continue
        groups.setdefault(SPLIT_RE.sub("", f.name), []).append(f)
    quants = []
    for members in groups.values():
        members.sort(key=lambda f: f.name)
        quants.append(QuantOption(listing.repo_id, quant_name(members[0].name), tuple(members)))
    quants.sort(key=lambda q: (q.size, q.quant))
    projectors.sort(key=lambda p: p.name)
    return RepoQuants(
        listing.repo_id,
        listing.commit,
        tuple(quants),
        tuple(projectors),
        gated=listing.gated,
        from_cache=from_cache,
        license=listing.license,
        downloads=listing.downloads,
    )


def repo_quants(client: HubClient, cache: Path, repo_id: str, revision: str = "main") -> RepoQuants:
    """The quants of ``repo_id``, from the Hub, or from the local cache when offline.

    Raises:
        HubError: the Hub cannot be reached and nothing is cached, or the Hub said no.
    """
    try:
        return group_quants(client.listing(repo_id, revision))
    except HubOfflineError:
        cached = cached_listing(cache, repo_id, revision)
        if cached is None:
            raise
        return group_quants(cached, from_cache=True)


def cached_listing(cache: Path, repo_id: str, revision: str = "main") -> RepoListing | None:
    """The complete files of ``repo_id`` in the local cache, as a listing."""
    commit = hub_cache.cached_commit(cache, repo_id, revision)
    if commit is None:
        return None
    snap = hub_cache.repo_dir(cache, repo_id) / "snapshots" / commit
    files = []
    for path in sorted(snap.rglob("*")):
        if not path.is_file():
            continue
        blob = path.resolve().name
        sha = blob if re.fullmatch(r"[0-9a-f]{64}", blob) else None
        files.append(RemoteFile(path.relative_to(snap).as_posix(), path.stat().st_size, sha))
    return RepoListing(repo_id, commit, tuple(files))


def search(client: HubClient, query: str, limit: int = 40) -> list[RepoSummary]:
    """GGUF repositories on the Hub matching ``query`` (curated ones first when they match)."""
    hits = client.search(query, limit=limit)
    curated = {c.repo_id for c in CURATED}
    return sorted(hits, key=lambda h: (h.repo_id not in curated, -h.downloads))


@dataclass(frozen=True, slots=True)
class RepoCard:
    """What the Model Manager says about a repository before its files are chosen."""

    repo_id: str
    title: str  # "Llama 4 Scout" for a curated repository, else the repository's name
    publisher: str  # "unsloth", "LM Studio"; the owner for others
    note: str = ""  # "dynamic UD quants"
    facts: ModelFacts | None = None
    licence: str = ""  # in words; "" when unknown
    downloads: int | None = None  # last 30 days
    vision: bool | None = None  # None until the files are listed
    gated: bool = False

    def downloads_text(self) -> str:
        """``48,213 downloads last month``, or "" when unknown."""
        if self.downloads is None:
            return ""
        return f"{self.downloads:,} download{'s' * (self.downloads != 1)} last month"


def repo_card(repo_id: str, quants: RepoQuants | None = None) -> RepoCard:
    """The card of ``repo_id``: from the curated list and the name, then from its listing."""
    owner, _, name = repo_id.partition("/")
    c = curated(repo_id)
    facts = model_facts(repo_id)
    title = f"Llama 4 {c.family}" if c else name or repo_id
    card = RepoCard(repo_id, title, c.publisher if c else owner, c.note if c else "", facts)
    if quants is None:
        return card
    return RepoCard(
        repo_id,
        card.title,
        card.publisher,
        card.note,
        facts,
        licence=licence_name(quants.license),
        downloads=quants.downloads,
        vision=quants.vision,
        gated=quants.gated,
    )
