"""Images sent as ``data:`` URLs: decoded (size-limited) into files the engine can read."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from app.core.errors import HerdError
from app.core.vision import check_image
from app.server.errors import ApiError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
_DATA_URL = re.compile(r"data:(?P<mime>image/[\w.+-]+)?(?P<params>(;[\w=.-]+)*);base64,", re.I)


def save_data_url(url: str, folder: Path, index: int) -> Path:
    """Decode one ``data:image/...;base64,`` URL into ``folder``; checked as ``herd chat`` does.

    Raises:
        ApiError: not a base64 data URL (remote URLs are not fetched), too large, or not
            an image the engine can take.
    """
    match = _DATA_URL.match(url)
    if match is None:
        message = "Images must be base64 data: URLs; this server fetches no remote URLs."
        raise ApiError(400, message, "bad_image")
    encoded = url[match.end() :]
    if len(encoded) * 3 // 4 > MAX_IMAGE_BYTES:
        raise ApiError(413, f"An image is over {MAX_IMAGE_BYTES // 2**20} MiB.", "image_too_large")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "An image's base64 data is not valid.", "bad_image") from None
    path = folder / f"image-{index}"
    path.write_bytes(data)
    try:
        check_image(path)
    except HerdError as exc:
        raise ApiError(400, exc.one_line(), "bad_image") from None
    return path
