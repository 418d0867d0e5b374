"""Image checks and preparation for the vision projector.

Every image a person attaches goes through :func:`check_image` before it is accepted (and
before ``herd chat`` loads a model), so a bad file is refused at once, with a message that
says what is wrong with *that* file. The engine reads pixels with :func:`load_rgb`: EXIF
orientation applied, RGB, at most :data:`MAX_ENGINE_SIDE` pixels on a side.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from app.core.errors import HerdError
from app.core.units import size_text

__all__ = [
    "MAX_ENGINE_SIDE",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "ImageError",
    "ImageInfo",
    "ImageProblem",
    "check_image",
    "file_digest",
    "load_rgb",
    "supported_suffixes",
]

MAX_FILE_BYTES = 50 * 1024 * 1024
"""Largest file accepted (50 MiB): far above any photo, far below a memory problem."""
MAX_PIXELS = 50_000_000
"""Largest image accepted, in pixels (50 megapixels, e.g. 8660 x 5773)."""
MAX_ENGINE_SIDE = 2048
"""Longest side handed to the projector; Llama 4 tiles images of 336 pixels, at most 16."""

# What Herd decodes; Pillow is asked to try only these decoders.
_FORMATS: dict[str, tuple[str, ...]] = {
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg", ".jfif"),
    "WEBP": (".webp",),
    "GIF": (".gif",),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
    "AVIF": (".avif",),
    "HEIF": (".heic", ".heif"),
}
# ISO base media "ftyp" brands: what a HEIC/AVIF file says it is in bytes 8..12
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


class ImageProblem(StrEnum):
    """What is wrong with an image file."""

    MISSING = "missing"
    NOT_A_FILE = "not_a_file"
    EMPTY = "empty"
    FILE_TOO_LARGE = "file_too_large"
    TOO_MANY_PIXELS = "too_many_pixels"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED = "unsupported"
    NEEDS_CONVERSION = "needs_conversion"
    CORRUPT = "corrupt"
    UNREADABLE = "unreadable"


class ImageError(HerdError, ValueError):
    """An image that cannot be attached; ``problem`` says why, ``path`` which file."""

    def __init__(
        self, problem: ImageProblem, path: Path, user_message: str, hint: str = ""
    ) -> None:
        super().__init__(user_message, hint)
        self.problem = problem
        self.path = path


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """An image that passed the checks; width and height are after EXIF rotation."""

    path: Path
    format: str  # Pillow's name: PNG, JPEG, WEBP ...
    width: int
    height: int
    file_bytes: int


def supported_suffixes() -> tuple[str, ...]:
    """File name endings an open-file dialog should offer (those this Pillow can decode)."""
    return tuple(s for fmt in _decodable_formats() for s in _FORMATS[fmt])


def _decodable_formats() -> list[str]:
    _register_plugins()
    return [fmt for fmt in _FORMATS if fmt in Image.OPEN]


@functools.cache
def _register_plugins() -> None:
    Image.init()
    try:  # optional plugin; without it HEIC is refused with "convert it first"
        from pillow_heif import register_heif_opener  # type: ignore[import-not-found]
    except ImportError:
        return
    register_heif_opener()


def _over(n: int, limit: int) -> str:
    """``n``, said so that it reads as more than ``limit`` even when both round alike."""
    return size_text(n) if size_text(n) != size_text(limit) else f"{n:,} bytes"


def _brand(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return b""
    return head[8:12] if head[4:8] == b"ftyp" else b""


def check_image(path: str | os.PathLike[str]) -> ImageInfo:
    """Check that ``path`` is an image Herd can send to the model; decode it fully.

    Args:
        path: The file.

    Returns:
        What the image is.

    Raises:
        ImageError: The file is missing, empty, over :data:`MAX_FILE_BYTES`, over
            :data:`MAX_PIXELS`, not an image, in a format Herd cannot read, or damaged.
    """
    path = Path(path)
    size = _check_file(path)
    fmt, width, height, _ = _decode(path, keep=False)
    return ImageInfo(path, fmt, width, height, size)


def _check_file(path: Path) -> int:
    """The checks that need no decoding; returns the file's size."""
    name = path.name
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ImageError(
            ImageProblem.MISSING, path, f"{name} does not exist.", "Check the file's name."
        ) from None
    except OSError as exc:
        raise ImageError(
            ImageProblem.UNREADABLE,
            path,
            f"{name} cannot be read: {exc.strerror or exc}.",
            "Check that the file is yours to read and its drive is connected.",
        ) from None
    if not path.is_file():
        raise ImageError(
            ImageProblem.NOT_A_FILE, path, f"{name} is not a file.", "Choose an image file."
        )
    if stat.st_size == 0:
        raise ImageError(
            ImageProblem.EMPTY, path, f"{name} is empty (0 bytes).", "Choose another image."
        )
    if stat.st_size > MAX_FILE_BYTES:
        raise ImageError(
            ImageProblem.FILE_TOO_LARGE,
            path,
            f"{name} is {_over(stat.st_size, MAX_FILE_BYTES)}; Herd accepts images up to "
            f"{size_text(MAX_FILE_BYTES)}.",
            "Save it smaller (a lower resolution or JPEG quality) and attach that.",
        )
    return stat.st_size


def _decode(
    path: Path, *, keep: bool, max_side: int = 0
) -> tuple[str, int, int, Image.Image | None]:
    """Open with the allowed decoders only, refuse a bomb before decoding, decode fully."""
    name = path.name
    formats = _decodable_formats()
    try:
        with warnings.catch_warnings():
            # Pillow warns (not raises) between its two bomb limits: make that an error too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=formats) as img:
                fmt = str(img.format)
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise _too_many_pixels(path, width, height)
                if keep and max_side and fmt == "JPEG":
                    img.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 ... scale
                img.load()  # a truncated or corrupt file fails here, not later in the engine
                rgb = _to_rgb(img) if keep else None
                orientation = img.getexif().get(0x0112, 1)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refused it while reading the header ("Image size (N pixels) exceeds ...")
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_many_pixels(path, 0, 0, int(found.group(1)) if found else 0) from None
    except UnidentifiedImageError:
        raise _unidentified(path) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        detail = str(exc).rstrip(".") or type(exc).__name__
        raise ImageError(
            ImageProblem.CORRUPT,
            path,
            f"{name} is damaged or incomplete ({detail}).",
            "Open it in an image viewer and save it again, or choose another image.",
        ) from None
    if orientation in (5, 6, 7, 8):  # EXIF says: rotated by 90 degrees
        width, height = height, width
    # multi-frame files (GIF, TIFF, MPO): the first frame is used, as a viewer shows it
    return fmt, width, height, rgb


def _too_many_pixels(path: Path, width: int, height: int, pixels: int = 0) -> ImageError:
    if width:
        size = f" ({width:,} x {height:,} = {width * height / 1e6:,.0f} megapixels)"
    else:
        size = f" ({pixels / 1e6:,.0f} megapixels)" if pixels else ""
    return ImageError(
        ImageProblem.TOO_MANY_PIXELS,
        path,
        f"{path.name} is too large{size}; Herd accepts images up to "
        f"{MAX_PIXELS / 1e6:.0f} megapixels.",
        "Scale it down in an image editor and attach the smaller copy.",
    )


def _unidentified(path: Path) -> ImageError:
    name = path.name
    brand = _brand(path)
    if brand in _HEIF_BRANDS or brand in _AVIF_BRANDS:
        kind = "HEIC" if brand in _HEIF_BRANDS else "AVIF"
        plugin = "pillow-heif" if kind == "HEIC" else "an AVIF-enabled Pillow"
        return ImageError(
            ImageProblem.NEEDS_CONVERSION,
            path,
            f"{name} is a {kind} image, which this installation cannot read.",
            f"Convert it first (to JPEG or PNG), or install {plugin}.",
        )
    try:  # which format is it? Only the header is read, never decoded.
        with Image.open(path) as img:
            other = str(img.format)
    except Exception:  # noqa: BLE001 - any failure here means "not an image"
        other = ""
    if other:
        return ImageError(
            ImageProblem.UNSUPPORTED,
            path,
            f"{name} is a {other} image; Herd reads PNG, JPEG, WebP, GIF, BMP, TIFF"
            f"{', AVIF' if 'AVIF' in _decodable_formats() else ''} and HEIC images.",
            "Convert it first (to JPEG or PNG).",
        )
    return ImageError(
        ImageProblem.NOT_AN_IMAGE,
        path,
        f"{name} is not an image (or not one Herd can read).",
        "Choose a PNG, JPEG, WebP, GIF, BMP or TIFF file.",
    )


def _to_rgb(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        # transparent areas become white, as a viewer shows them, not black
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def load_rgb(path: str | os.PathLike[str], max_side: int = MAX_ENGINE_SIDE) -> Image.Image:
    """The image as upright RGB pixels, scaled down to at most ``max_side`` on a side.

    Args:
        path: The file.
        max_side: Longest side of the result; 0 keeps the full size.

    Returns:
        A new RGB image.

    Raises:
        ImageError: As :func:`check_image`.
    """
    path = Path(path)
    _check_file(path)
    _, _, _, img = _decode(path, keep=True, max_side=max_side)
    assert img is not None
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def file_digest(path: str | os.PathLike[str]) -> str:
    """The file's sha256, hex (how attached images are named and told apart)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
