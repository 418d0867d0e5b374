"""``herd chat MODEL --image PATH``: images checked before the load, then sent with the prompt."""

from __future__ import annotations

import re
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from tests.engine.test_cli import assert_one_line_failure, herd

ARGS = ("--prompt", "What is this?", "--max-tokens", "4", "--threads", "1", "--ctx", "512")


def _png(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    Image.new("RGB", size, (180, 20, 20)).save(path)
    return path


def _bomb(path: Path) -> Path:
    """A PNG header saying 100,000 x 100,000 pixels: a few bytes on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
    )
    return path


def _truncated_jpeg(path: Path) -> Path:
    full = path.with_name("full.jpg")
    Image.new("RGB", (64, 64), (10, 200, 10)).save(full, quality=95)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _text_as_png(path: Path) -> Path:
    path.write_text("a shopping list, not a picture\n")
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("cut.jpg", _truncated_jpeg, "damaged or incomplete"),
        ("bomb.png", _bomb, "50 megapixels"),
        ("notes.png", _text_as_png, "not an image"),
        ("empty.png", _empty, "empty (0 bytes)"),
        ("missing.png", None, "does not exist"),
    ],
)
def test_bad_image_fails_before_the_model_loads(
    tiny_vision_model: Path, tmp_path: Path, name: str, make: object, expected: str
) -> None:
    good = _png(tmp_path / "good.png")
    bad = tmp_path / name
    if make is not None:
        make(bad)  # type: ignore[operator]
    home = tmp_path / "home"
    started = time.perf_counter()
    result = herd("chat", tiny_vision_model, "--image", good, "--image", bad, *ARGS, home=home)
    line = assert_one_line_failure(result)
    assert name in line and expected in line, line
    assert result.stdout == ""
    assert not (home / "logs" / "engine.log").exists()  # the engine never started
    assert time.perf_counter() - started < 30


def test_png_and_jpeg_with_the_prompt(tiny_vision_model: Path, tmp_path: Path) -> None:
    png = _png(tmp_path / "barn.png")
    jpeg = tmp_path / "sky.jpg"
    Image.new("RGB", (28, 28), (60, 120, 230)).save(jpeg)
    plain = herd("chat", tiny_vision_model, *ARGS, "--stats", home=tmp_path / "h1")
    assert plain.returncode == 0, plain.stderr
    result = herd(
        "chat", tiny_vision_model, "--image", png, "--image", jpeg, *ARGS, "--stats",
        home=tmp_path / "h2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()

    def prompt_tokens(stderr: str) -> int:
        found = re.search(r"prompt (\d+) tokens", stderr)
        assert found, stderr
        return int(found.group(1))

    # Llama 4's official layout (28 px tiles of 1 token in the tiny projector): 16 tokens for
    # the 3 x 2 tiled PNG, 4 for the one-tile JPEG, each with its begin/end markers
    assert prompt_tokens(result.stderr) == prompt_tokens(plain.stderr) + 16 + 4


def test_image_for_a_model_without_projector(tiny_scout: Path, tmp_path: Path) -> None:
    folder = tmp_path / "alone"
    folder.mkdir()
    model = folder / "scout.gguf"
    shutil.copyfile(tiny_scout, model)
    home = tmp_path / "home"
    result = herd("chat", model, "--image", _png(tmp_path / "a.png"), *ARGS, home=home)
    line = assert_one_line_failure(result)
    assert "no vision projector" in line
    assert not (home / "logs" / "engine.log").exists()


def test_explicit_projector(tiny_scout: Path, tiny_vision_model: Path, tmp_path: Path) -> None:
    projector = tiny_vision_model.with_name("mmproj-tiny-llama4-scout.gguf")
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    model = folder / "scout.gguf"
    shutil.copyfile(tiny_scout, model)
    image = _png(tmp_path / "a.png")
    args = ("--image", image, "--projector", projector)
    result = herd("chat", model, *args, *ARGS, home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    missing = herd("chat", model, "--image", image, "--projector", tmp_path / "nope.gguf", *ARGS,
                   home=tmp_path / "home2")  # fmt: skip
    assert "does not exist" in assert_one_line_failure(missing)
