"""core/chat/attachments.py: images copied in by sha256, resolved, and cleaned up."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from app.core.chat import attachments
from app.core.errors import HerdError
from app.core.paths import AppPaths
from app.core.vision import ImageError, ImageProblem


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "home").ensure()


def _image(path: Path, color: str = "red", fmt: str | None = None) -> Path:
    Image.new("RGB", (20, 10), color).save(path, format=fmt)
    return path


def test_import_copies_by_digest_once(paths: AppPaths, tmp_path: Path) -> None:
    src = _image(tmp_path / "photo.png")
    stored = attachments.import_image(paths, src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert stored.ref == f"sha256:{digest}"
    assert stored.path == paths.images / f"{digest}.png"
    assert stored.path.read_bytes() == src.read_bytes()
    copy = tmp_path / "same.png"
    copy.write_bytes(src.read_bytes())
    assert attachments.import_image(paths, copy).path == stored.path
    assert [p.name for p in paths.images.iterdir()] == [stored.path.name]


def test_suffix_follows_the_content_not_the_name(paths: AppPaths, tmp_path: Path) -> None:
    src = _image(tmp_path / "photo.png", fmt="JPEG")  # a JPEG named .png
    assert attachments.import_image(paths, src).path.suffix == ".jpg"


def test_bad_image_is_not_copied(paths: AppPaths, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("text")
    with pytest.raises(ImageError):
        attachments.import_image(paths, bad)
    assert list(paths.images.iterdir()) == []


def test_import_bytes_from_the_clipboard(paths: AppPaths) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buf, format="PNG")
    stored = attachments.import_bytes(paths, buf.getvalue())
    assert stored.path.exists() and stored.info.format == "PNG"
    assert [p.name for p in paths.images.iterdir()] == [stored.path.name]  # no temp left
    with pytest.raises(ImageError):
        attachments.import_bytes(paths, b"garbage")
    assert len(list(paths.images.iterdir())) == 1


def test_resolve(paths: AppPaths, tmp_path: Path) -> None:
    stored = attachments.import_image(paths, _image(tmp_path / "a.png"))
    assert attachments.resolve(paths, stored.ref) == stored.path
    assert attachments.resolve(paths, str(tmp_path / "a.png")) == tmp_path / "a.png"
    stored.path.unlink()
    with pytest.raises(ImageError) as info:
        attachments.resolve(paths, stored.ref)
    assert info.value.problem is ImageProblem.MISSING
    assert isinstance(info.value, HerdError) and info.value.hint


def test_delete_unreferenced(paths: AppPaths, tmp_path: Path) -> None:
    kept = attachments.import_image(paths, _image(tmp_path / "a.png", "red"))
    by_path = attachments.import_image(paths, _image(tmp_path / "b.png", "green"))
    gone = attachments.import_image(paths, _image(tmp_path / "c.png", "blue"))
    stranger = paths.images / "notes.txt"  # not ours: never touched
    stranger.write_text("x")
    deleted = attachments.delete_unreferenced(paths, {kept.ref, str(by_path.path), "junk"})
    assert deleted == [gone.path]
    assert kept.path.exists() and by_path.path.exists() and stranger.exists()
    assert not gone.path.exists()
    assert attachments.delete_unreferenced(paths, []) != []  # everything of ours goes
    assert stranger.exists()


def test_ref_digest() -> None:
    hex_ = "ab" * 32
    assert attachments.ref_digest(f"sha256:{hex_}") == hex_
    assert attachments.ref_digest(f"/x/{hex_}.png") == hex_
    assert attachments.ref_digest("sha256:nothex") is None
    assert attachments.ref_digest("/x/photo.png") is None
