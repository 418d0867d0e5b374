"""Ollama's models, read from its store as they are: the manifests name GGUF blobs.

A store (``~/.ollama/models``, or ``OLLAMA_MODELS``) holds
``manifests/<host>/<namespace>/<model>/<tag>``, JSON in the OCI image-manifest shape, and
``blobs/sha256-<hex>``. The layer with media type ``application/vnd.ollama.image.model`` is
the GGUF; ``application/vnd.ollama.image.projector`` is the vision projector; the config
blob's ``file_type`` is the quantization. A model is shown by Ollama's own name
(``llama4:scout``, ``hf.co/owner/repo:Q4_K_M``), never by its blob's hash.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from app.core.hub.catalog import QUANT_RE
from app.core.hub.local_models import LocalModel, Origin, Scan, Skipped, make_model

logger = logging.getLogger(__name__)

MODEL_LAYER = "application/vnd.ollama.image.model"
PROJECTOR_LAYER = "application/vnd.ollama.image.projector"
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
# Ollama's own check before it builds a blob's path (server/modelpath.go)
DIGEST_RE = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")
GGUF_MAGIC = b"GGUF"


def ollama_name(host: str, namespace: str, model: str, tag: str) -> str:
    """The name ``ollama list`` shows (Ollama's ``GetShortTagname``)."""
    if host == DEFAULT_HOST:
        if namespace == DEFAULT_NAMESPACE:
            return f"{model}:{tag}"
        return f"{namespace}/{model}:{tag}"
    return f"{host}/{namespace}/{model}:{tag}"


def scan_ollama(store: Path) -> Scan:
    """Every GGUF model in an Ollama store; what cannot be used is skipped with its reason."""
    scan = Scan()
    manifests = store / "manifests"
    if not manifests.is_dir():
        return scan
    try:  # host/namespace/model/tag; a named tag before "latest", which is often its alias
        found = [p for p in manifests.glob("*/*/*/*") if not p.name.startswith(".")]
        found.sort(key=lambda p: (p.name == "latest", p.parts))
    except OSError as exc:
        scan.skip(manifests, f"cannot be read ({exc.strerror or exc})", Origin.OLLAMA)
        return scan
    for manifest in found:
        if not manifest.is_file():
            continue
        name = ollama_name(*manifest.relative_to(manifests).parts)
        result = read_manifest(store, manifest, name)
        if isinstance(result, Skipped):
            scan.skip(result.path, result.reason, result.origin, result.name)
        else:
            scan.models.append(result)
    return scan


def read_manifest(store: Path, manifest: Path, name: str) -> LocalModel | Skipped:
    """The model one manifest names, or why it cannot be offered."""

    def skipped(reason: str) -> Skipped:
        return Skipped(manifest, reason, Origin.OLLAMA, name)

    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return skipped(f"its manifest cannot be read ({getattr(exc, 'strerror', None) or exc})")
    except ValueError as exc:
        return skipped(f"its manifest is not valid JSON ({exc})")
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, list):
        return skipped("its manifest lists no layers")
    weights = _layers(layers, MODEL_LAYER)
    if not weights:
        return skipped("it has no GGUF weights (a model in Ollama's own format); Herd runs GGUF")
    blob = _blob(store, weights[0].get("digest"))
    if isinstance(blob, str):
        again = f"; `ollama pull {name}` fetches them again" if blob.endswith("missing") else ""
        return skipped(f"its weights {blob}{again}")
    try:
        with blob.open("rb") as fh:
            magic = fh.read(4)
        size = blob.stat().st_size
    except OSError as exc:
        return skipped(f"its weights {blob.name} cannot be read ({exc.strerror or exc})")
    if magic != GGUF_MAGIC:
        return skipped("its weights are not a GGUF file (an old GGML model?)")
    expected = weights[0].get("size")
    if isinstance(expected, int) and expected != size:
        return skipped(f"its weights are incomplete ({size} of {expected} bytes)")
    try:
        return make_model(
            (blob,),
            Origin.OLLAMA,
            projector=_projector(store, layers, name),
            name=name,
            quant=_quant(store, data, name),
        )
    except OSError as exc:  # removed while Herd looked
        return skipped(f"its weights {blob.name} cannot be read ({exc.strerror or exc})")


def _layers(layers: list[Any], media_type: str) -> list[dict[str, Any]]:
    return [la for la in layers if isinstance(la, dict) and la.get("mediaType") == media_type]


def _blob(store: Path, digest: object) -> Path | str:
    """The blob file of ``digest``, or what is wrong with it (in words)."""
    m = DIGEST_RE.fullmatch(digest) if isinstance(digest, str) else None
    if m is None:
        return f"name an invalid digest ({digest!r})"
    hexdigest = m[1].lower()
    # sha256-<hex> today; older Ollama named them sha256:<hex> except on Windows
    for name in (f"sha256-{hexdigest}", f"sha256:{hexdigest}"):
        path = store / "blobs" / name
        if path.is_file():
            return path
    return f"blob sha256-{hexdigest[:12]}… is missing"


def _projector(store: Path, layers: list[Any], name: str) -> Path | None:
    found = _layers(layers, PROJECTOR_LAYER)
    if not found:
        return None
    blob = _blob(store, found[0].get("digest"))
    if isinstance(blob, str):
        logger.info("library: %s: its projector %s; offered without vision", name, blob)
        return None
    return blob


def _quant(store: Path, manifest: dict[str, Any], name: str) -> str:
    """The quantization: the config blob's ``file_type``, else the tag's quant name."""
    config = manifest.get("config")
    blob = _blob(store, config.get("digest")) if isinstance(config, dict) else None
    if isinstance(blob, Path):
        try:
            file_type = json.loads(blob.read_text(encoding="utf-8")).get("file_type")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            file_type = None
        if isinstance(file_type, str) and file_type:
            return file_type.upper()
    found = list(QUANT_RE.finditer(name.rsplit(":", 1)[-1]))
    return found[-1].group(0).upper() if found else ""
