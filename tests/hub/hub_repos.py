"""What the local Hub server serves: files, repositories, and the ones the tests use.

A tiny Scout-named repository (split Q4_K_M, Q8_0, projector), a gated one, and showcases
that list about the real sizes of unsloth's Scout and Maverick quants with tiny bodies.
"""

from __future__ import annotations

import hashlib
import random
import struct
from dataclasses import dataclass
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def gguf_bytes(size: int, seed: int) -> bytes:
    """``size`` bytes that start like a GGUF (magic, version 3, no tensors) then noise."""
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    return head + random.Random(seed).randbytes(max(size - len(head), 0))


@dataclass
class HubFile:
    """One file of a repository: in memory, or on disk (big benchmark files)."""

    name: str
    data: bytes | None = None
    path: Path | None = None
    lfs: bool = True
    sha256: str = ""
    size: int = 0
    listed_size: int | None = None  # what model info advertises (screenshots of big repos)

    def __post_init__(self) -> None:
        if self.data is not None:
            self.size = len(self.data)
            self.sha256 = self.sha256 or hashlib.sha256(self.data).hexdigest()
        elif self.path is not None:
            self.size = self.path.stat().st_size
            if not self.sha256:
                h = hashlib.sha256()
                with self.path.open("rb") as fh:
                    while block := fh.read(1 << 22):
                        h.update(block)
                self.sha256 = h.hexdigest()

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(self.name.encode()).hexdigest()


@dataclass
class HubRepo:
    """A model repository at one commit."""

    repo_id: str
    files: dict[str, HubFile]
    commit: str = COMMIT
    gated: bool = False
    downloads: int = 0
    license: str = ""  # the card's licence id ("other" with license_name, as Meta's repos)
    license_name: str = ""

    @property
    def tags(self) -> list[str]:
        return ["gguf"] + ([f"license:{self.license}"] if self.license else [])

    @property
    def card_data(self) -> dict[str, str]:
        card = {"license": self.license} if self.license else {}
        return card | ({"license_name": self.license_name} if self.license_name else {})


def scout_repo(repo_id: str = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF") -> HubRepo:
    """A repository with a split Q4_K_M, a single-file Q8_0, a projector and a README."""
    stem = "Llama-4-Scout-17B-16E-Instruct"
    files = [
        HubFile(f"Q4_K_M/{stem}-Q4_K_M-00001-of-00002.gguf", gguf_bytes(300_000, 1)),
        HubFile(f"Q4_K_M/{stem}-Q4_K_M-00002-of-00002.gguf", random.Random(2).randbytes(200_000)),
        HubFile(f"{stem}-Q8_0.gguf", gguf_bytes(640_000, 3)),
        HubFile("mmproj-F16.gguf", gguf_bytes(50_000, 4)),
        HubFile("README.md", b"# tiny test repo\n", lfs=False),
    ]
    return HubRepo(repo_id, {f.name: f for f in files}, downloads=10, license="llama4")


def gated_repo(repo_id: str = "herd-test/Gated-Llama-4-GGUF") -> HubRepo:
    """A gated repository with one small model file."""
    f = HubFile("Gated-Q4_K_M.gguf", gguf_bytes(40_000, 5))
    return HubRepo(repo_id, {f.name: f}, gated=True, commit="f" * 40)


SCOUT_SIZES = {  # GB, about unsloth's files
    "UD-IQ1_S": 29.6,
    "UD-IQ2_XXS": 35.8,
    "UD-Q2_K_XL": 42.2,
    "UD-Q3_K_XL": 49.0,
    "Q4_K_M": 65.4,
    "UD-Q4_K_XL": 60.7,
    "Q5_K_M": 76.5,
    "Q6_K": 88.4,
    "Q8_0": 114.5,
}
MAVERICK_SIZES = {
    "UD-IQ1_S": 122.0,
    "UD-IQ2_XXS": 140.0,
    "UD-Q2_K_XL": 151.0,
    "UD-Q3_K_XL": 191.0,
    "Q4_K_M": 243.0,
    "Q8_0": 426.0,
}


def showcase_repo(
    repo_id: str = "unsloth/Llama-4-Scout-17B-16E-Instruct-GGUF",
    real_q4: Path | None = None,
    sizes: dict[str, float] | None = None,
) -> HubRepo:
    """A repository that lists Scout-sized quants (about the real sizes; tiny bodies).

    With ``real_q4`` (a header-only real-layout GGUF) its Q4_K_M is that file, so the
    planner can judge it from its headers. ``sizes`` (GB per quant, e.g.
    :data:`MAVERICK_SIZES`) replaces Scout's.
    """
    stem = repo_id.split("/", 1)[1].removesuffix("-GGUF")
    gb = 1_000_000_000
    sizes = sizes or SCOUT_SIZES
    files = []
    for i, (quant, size) in enumerate(sizes.items()):
        parts = max(1, int(size // 49) + 1) if size > 50 else 1
        for p in range(1, parts + 1):
            name = f"{quant}/{stem}-{quant}" + (f"-{p:05d}-of-{parts:05d}" if parts > 1 else "")
            files.append(
                HubFile(
                    f"{name}.gguf", gguf_bytes(64, i * 10 + p), listed_size=int(size * gb / parts)
                )
            )
    if real_q4 is not None:
        files = [f for f in files if "/Q4_K_M/" not in f"/{f.name}"]
        files.append(HubFile(f"Q4_K_M/{stem}-Q4_K_M.gguf", path=real_q4, sha256="ab" * 32))
    files.append(HubFile("mmproj-F16.gguf", gguf_bytes(64, 99), listed_size=int(1.75 * gb)))
    files.append(HubFile("README.md", b"# Llama 4\n", lfs=False))
    return HubRepo(
        repo_id,
        {f.name: f for f in files},
        downloads=48_213,
        license="other",
        license_name="llama4",
    )
