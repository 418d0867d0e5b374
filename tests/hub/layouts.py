"""The recorded folder layouts of LM Studio and Ollama (``tests/hub/data``), built in a folder.

Each description names files and blobs by kind (a real tiny Llama 4 GGUF, a GGUF header
and noise, JSON, text); the builder writes them and puts each Ollama blob's real sha256
digest and size into the manifests that name it (``@name``).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.hub.hub_server import gguf_bytes

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> dict[str, Any]:
    """One recorded layout description."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _content(name: str, spec: dict[str, Any], tiny_scout: Path) -> bytes:
    kind = spec["kind"]
    if kind == "tiny-scout":
        return tiny_scout.read_bytes()
    if kind == "gguf":  # seeded by name: two blobs of one size still differ
        return gguf_bytes(spec.get("size", 1024), zlib.crc32(name.encode()))
    if kind == "json":
        return json.dumps(spec["value"]).encode()
    return str(spec.get("value", f"{name}\n")).encode()


@dataclass
class OllamaStore:
    """A built Ollama store: its folder and each named blob's digest and file."""

    root: Path
    digests: dict[str, str]
    blobs: dict[str, Path]
    description: dict[str, Any]

    def manifest(self, rel: str) -> Path:
        """The manifest file of ``host/namespace/model/tag``."""
        return self.root / "manifests" / rel


def build_ollama(root: Path, tiny_scout: Path) -> OllamaStore:
    """Write the recorded Ollama store under ``root`` (``manifests/``, ``blobs/``)."""
    description = recorded("ollama_store.json")
    digests: dict[str, str] = {}
    sizes: dict[str, int] = {}
    blobs: dict[str, Path] = {}
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    for name, spec in description["blobs"].items():
        data = _content(name, spec, tiny_scout)
        digests[name] = hashlib.sha256(data).hexdigest()
        sizes[name] = len(data)
        sep = ":" if spec.get("colon_name") else "-"
        blobs[name] = root / "blobs" / f"sha256{sep}{digests[name]}"
        blobs[name].write_bytes(data[: spec.get("cut_to", len(data))])

    def resolve(layer: dict[str, Any]) -> dict[str, Any]:
        digest = layer.get("digest", "")
        if not digest.startswith("@"):
            return layer
        name = digest[1:]
        return {**layer, "digest": f"sha256:{digests[name]}", "size": sizes[name]}

    manifests = description["manifests"]
    for rel, manifest in manifests.items():
        if isinstance(manifest, str) and manifest.startswith("same as "):
            manifest = manifests[manifest.removeprefix("same as ")]
        if isinstance(manifest, dict):
            manifest = dict(manifest)
            if "config" in manifest:
                manifest["config"] = resolve(manifest["config"])
            manifest["layers"] = [resolve(la) for la in manifest["layers"]]
            manifest = json.dumps(manifest)
        path = root / "manifests" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(manifest, encoding="utf-8")
    return OllamaStore(root, digests, blobs, description)


def build_lmstudio(root: Path, tiny_scout: Path) -> Path:
    """Write the recorded LM Studio layout under ``root``; returns the user's home folder."""
    description = recorded("lmstudio_layout.json")
    for rel, spec in description["files"].items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_content(rel, spec, tiny_scout))
    home = root / "user-home"
    home.mkdir(parents=True, exist_ok=True)
    lmstudio = root / description["pointer"]
    (home / ".lmstudio-home-pointer").write_text(f"{lmstudio}\n", encoding="utf-8")
    settings = json.dumps(description["settings"]).replace("{root}", root.as_posix())
    (lmstudio / "settings.json").write_text(settings, encoding="utf-8")
    return home
