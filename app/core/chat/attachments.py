"""Attached images: copied into ``AppPaths.images``, named by their sha256.

A message refers to an image as ``sha256:<hex>`` (:attr:`StoredImage.ref`); the chat store
keeps those refs. The same picture attached twice is stored once. When conversations are
deleted, :func:`delete_unreferenced` removes the files no remaining message refers to.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.core import vision
from app.core.errors import HerdError
from app.core.paths import AppPaths
from app.core.vision import ImageError, ImageProblem

__all__ = [
    "REF_PREFIX",
    "StoredImage",
    "delete_unreferenced",
    "import_bytes",
    "import_image",
    "ref_digest",
    "resolve",
]

logger = logging.getLogger(__name__)

REF_PREFIX = "sha256:"
_HEX = re.compile(r"[0-9a-f]{64}")
_SUFFIX = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "WEBP": ".webp",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tiff",
    "AVIF": ".avif",
    "HEIF": ".heic",
}
_TEMP_PREFIX = ".incoming-"


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An image in Herd's data folder."""

    ref: str  # "sha256:<hex>": what a ChatMessage and the chat store keep
    path: Path
    digest: str
    info: vision.ImageInfo


def import_image(paths: AppPaths, source: str | os.PathLike[str]) -> StoredImage:
    """Check ``source`` and copy it into the images folder (once per distinct content).

    Raises:
        ImageError: the file is not an image Herd accepts (see :func:`vision.check_image`).
        HerdError: the copy could not be written (disk full, permissions).
    """
    source = Path(source)
    info = vision.check_image(source)
    digest = vision.file_digest(source)
    folder = paths.images
    dest = folder / f"{digest}{_SUFFIX.get(info.format, '.img')}"
    if not dest.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=folder)
            try:
                with os.fdopen(fd, "wb") as out, open(source, "rb") as inp:
                    while block := inp.read(1 << 20):
                        out.write(block)
                os.replace(temp, dest)  # whole or not at all
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise HerdError(
                f"{source.name} could not be copied into Herd's data folder: "
                f"{exc.strerror or exc}.",
                f"Check the free space and permissions of {folder}.",
            ) from None
    return StoredImage(REF_PREFIX + digest, dest, digest, info)


def import_bytes(paths: AppPaths, data: bytes, suffix: str = ".png") -> StoredImage:
    """Store an image given as bytes (a pasted clipboard image).

    Raises:
        ImageError: the bytes are not an image Herd accepts.
        HerdError: the file could not be written.
    """
    folder = paths.images
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=suffix, dir=folder)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise HerdError(
            f"The pasted image could not be saved: {exc.strerror or exc}.",
            f"Check the free space and permissions of {folder}.",
        ) from None
    try:
        return import_image(paths, temp)
    finally:
        Path(temp).unlink(missing_ok=True)


def ref_digest(ref: str) -> str | None:
    """The sha256 a ref names: ``sha256:<hex>``, or a stored file's path; else None."""
    if ref.startswith(REF_PREFIX):
        digest = ref[len(REF_PREFIX) :].lower()
        return digest if _HEX.fullmatch(digest) else None
    stem = Path(ref).name.split(".", 1)[0].lower()
    return stem if _HEX.fullmatch(stem) else None


def resolve(paths: AppPaths, ref: str) -> Path:
    """The file a message's image ref points to (a ``sha256:`` ref or a plain path).

    Raises:
        ImageError: a ``sha256:`` ref whose file is gone.
    """
    if not ref.startswith(REF_PREFIX):
        return Path(ref)
    digest = ref_digest(ref)
    if digest is not None:
        for candidate in sorted(paths.images.glob(f"{digest}.*")):
            if candidate.is_file():
                return candidate
    raise ImageError(
        ImageProblem.MISSING,
        paths.images / (digest or ref),
        f"An attached image ({ref[:19]}...) is no longer in Herd's data folder.",
        "Attach the image again.",
    )


def delete_unreferenced(paths: AppPaths, referenced: Iterable[str]) -> list[Path]:
    """Delete stored images that no ref in ``referenced`` names.

    Args:
        paths: Where the images are.
        referenced: Every image ref still in use: those of all remaining messages, and of
            images attached in a composer but not sent yet.

    Returns:
        The files deleted.
    """
    keep = {d for d in (ref_digest(r) for r in referenced) if d}
    deleted: list[Path] = []
    try:
        entries = list(paths.images.iterdir())
    except OSError:
        return deleted
    for path in entries:
        digest = ref_digest(str(path))
        if digest is None or digest in keep or not path.is_file():
            continue  # not one of ours (or an import in progress), or still in use
        try:
            path.unlink()
        except OSError as exc:
            logger.warning("could not delete unused image %s: %s", path, exc)
            continue
        deleted.append(path)
    return deleted
