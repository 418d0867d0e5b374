"""core/vision.py: every bad image gets its own clear message; good ones come out upright RGB."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from app.core import vision
from app.core.errors import HerdError
from app.core.vision import ImageError, ImageProblem, check_image, load_rgb


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` but holds one tiny IDAT: nothing allocated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    img.paste((20, 20, 220), (0, 0, 32, 48))
    img.save(path, quality=90)
    return path


def _problem(path: Path) -> ImageError:
    with pytest.raises(ImageError) as info:
        check_image(path)
    err = info.value
    assert isinstance(err, HerdError)
    assert err.user_message and err.hint
    assert path.name in err.user_message
    assert err.path == path
    return err


def test_good_png_and_jpeg(tmp_path: Path, photo: Path) -> None:
    png = tmp_path / "a.png"
    Image.new("RGBA", (30, 20), (0, 255, 0, 128)).save(png)
    info = check_image(png)
    assert (info.format, info.width, info.height) == ("PNG", 30, 20)
    assert check_image(photo).format == "JPEG"
    rgb = load_rgb(png)
    assert rgb.mode == "RGB" and rgb.size == (30, 20)


def test_truncated_jpeg(tmp_path: Path, photo: Path) -> None:
    cut = tmp_path / "cut.jpg"
    data = photo.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    err = _problem(cut)
    assert err.problem is ImageProblem.CORRUPT
    assert "damaged or incomplete" in err.user_message


def test_decompression_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    assert bomb.stat().st_size < 200
    err = _problem(bomb)
    assert err.problem is ImageProblem.TOO_MANY_PIXELS
    assert "10,000 megapixels" in err.user_message  # 100,000 x 100,000
    assert "50 megapixels" in err.user_message  # the limit is said


def test_just_over_the_pixel_limit(tmp_path: Path) -> None:
    err = _problem(_png_header_only(tmp_path / "big.png", 10_000, 5_001))
    assert err.problem is ImageProblem.TOO_MANY_PIXELS


def test_text_file_renamed_png(tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("these are my notes, not a picture\n" * 20)
    err = _problem(fake)
    assert err.problem is ImageProblem.NOT_AN_IMAGE
    assert "not an image" in err.user_message


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    err = _problem(empty)
    assert err.problem is ImageProblem.EMPTY
    assert "0 bytes" in err.user_message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert _problem(tmp_path / "nope.png").problem is ImageProblem.MISSING
    folder = tmp_path / "dir.png"
    folder.mkdir()
    assert _problem(folder).problem is ImageProblem.NOT_A_FILE


def test_file_over_the_size_limit(tmp_path: Path, photo: Path) -> None:
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(photo.read_bytes())
    with open(huge, "r+b") as f:
        f.truncate(vision.MAX_FILE_BYTES + 1)  # sparse: no disk space used
    err = _problem(huge)
    assert err.problem is ImageProblem.FILE_TOO_LARGE
    assert "is 52,428,801 bytes; Herd accepts images up to 50 MiB" in err.user_message


def test_unsupported_format(tmp_path: Path) -> None:
    ico = tmp_path / "icon.ico"
    Image.new("RGB", (16, 16), "red").save(ico)
    err = _problem(ico)
    assert err.problem is ImageProblem.UNSUPPORTED
    assert "ICO" in err.user_message
    assert "Convert it first" in err.hint


def test_heic_without_plugin_says_convert_first(tmp_path: Path) -> None:
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pillow-heif is installed: HEIC is readable here")
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    err = _problem(heic)
    assert err.problem is ImageProblem.NEEDS_CONVERSION
    assert "HEIC" in err.user_message
    assert "Convert it first" in err.hint


def test_avif_when_pillow_reads_it(tmp_path: Path) -> None:
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    avif = tmp_path / "a.avif"
    Image.new("RGB", (40, 30), "blue").save(avif)
    assert check_image(avif).format == "AVIF"
    assert ".avif" in vision.supported_suffixes()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    img = Image.new("RGB", (60, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    img.save(path, exif=exif)
    info = check_image(path)
    assert (info.width, info.height) == (20, 60)
    assert load_rgb(path).size == (20, 60)


def test_large_images_are_scaled_down_for_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (3000, 1000), "white").save(path)
    assert load_rgb(path, max_side=600).size == (600, 200)
    assert load_rgb(path, max_side=0).size == (3000, 1000)


def test_transparency_becomes_white(tmp_path: Path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(path)
    assert load_rgb(path).getpixel((1, 1)) == (255, 255, 255)


def test_digest_is_sha256(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    assert vision.file_digest(path) == hashlib.sha256(b"abc").hexdigest()
