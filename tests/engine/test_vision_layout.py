"""Llama 4's official image layout through the real engine, at the real tile geometry.

The tiny projector has Scout's geometry (336 px tiles, 14 px patches, pixel shuffle 2: 144
embeddings per tile), so the prompt counts are the official ones: transformers'
``Llama4Processor`` gives the figures in ``OFFICIAL`` for these sizes.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from app.core import events as ev
from app.core.chat.messages import ChatMessage, Role
from app.core.engine.client import EngineClient
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings
from tests.engine.test_cli import herd

OFFICIAL = {(200, 150): 147, (672, 336): 437, (1344, 1344): 2467, (2048, 1536): 1887,
            (3000, 400): 2467}  # fmt: skip
SETTINGS = LoadSettings(n_ctx=4096, n_threads=2)
SHORT = SamplingSettings(max_tokens=2, seed=3)
QUESTION = "What is this?"


def _picture(folder: Path, size: tuple[int, int]) -> Path:
    path = folder / f"picture-{size[0]}x{size[1]}.png"
    image = Image.new("RGB", size, (30, 90, 200))
    image.paste((240, 200, 20), (0, 0, size[0] // 2, size[1] // 3))
    image.save(path)
    return path


def test_prompt_counts_are_the_official_ones(
    client: EngineClient, tiny_vision_model_336: Path, tmp_path: Path
) -> None:
    loaded = list(client.load(tiny_vision_model_336, SETTINGS))[-1]
    assert isinstance(loaded, ev.Loaded) and loaded.facts.vision, loaded
    plain = [ChatMessage(Role.USER, QUESTION)]
    base = client.count_tokens(messages=plain)
    for size, official in OFFICIAL.items():
        messages = [ChatMessage(Role.USER, QUESTION, images=(str(_picture(tmp_path, size)),))]
        # the token meter counts without the projector ...
        assert client.count_tokens(messages=messages) == base + official, size
        # ... exactly what the engine then evaluates
        done = list(client.chat(messages, SHORT))[-1]
        assert isinstance(done, ev.Finished), done
        assert done.image_tokens == official, size
        assert done.prompt_tokens == base + official, size


def test_two_images_and_the_next_turn_reuses_their_tiles(
    client: EngineClient, tiny_vision_model_336: Path, tmp_path: Path, paths: AppPaths
) -> None:
    list(client.load(tiny_vision_model_336, SETTINGS))
    wide, small = _picture(tmp_path, (672, 336)), _picture(tmp_path, (200, 150))
    first = [ChatMessage(Role.USER, QUESTION, images=(str(wide), str(small)))]
    done = list(client.chat(first, SHORT))[-1]
    assert isinstance(done, ev.Finished)
    assert done.image_tokens == 437 + 147
    history = [*first, ChatMessage(Role.ASSISTANT, done.text), ChatMessage(Role.USER, "And?")]
    again = list(client.chat(history, SHORT))[-1]
    assert isinstance(again, ev.Finished)
    assert again.image_tokens == done.image_tokens
    # each tile encoded once (2 tiles and the global view, 1 tile): the next turn found
    # them all in the cache
    assert paths.engine_log.read_text(errors="replace").count("encoding image slice") == 3 + 1


def test_herd_chat_stats_report_the_official_count(
    tiny_vision_model_336: Path, tmp_path: Path
) -> None:
    image = _picture(tmp_path, (672, 336))
    args = ("--stats", "--max-tokens", "2", "--threads", "2", "--ctx", "2048")
    plain = herd("chat", tiny_vision_model_336, "--prompt", QUESTION, *args, home=tmp_path / "a")
    seen = herd(
        "chat", tiny_vision_model_336, "--image", image, "--prompt", QUESTION, *args,
        home=tmp_path / "b",
    )  # fmt: skip
    assert plain.returncode == 0 and seen.returncode == 0, seen.stderr
    assert _prompt_tokens(seen.stderr) == _prompt_tokens(plain.stderr) + 437


def _prompt_tokens(stderr: str) -> int:
    found = re.search(r"prompt (\d+) tokens", stderr)
    assert found, stderr
    return int(found.group(1))


def test_edge_sizes_count_and_run(
    client: EngineClient, tiny_vision_model_336: Path, tmp_path: Path
) -> None:
    """Exactly one tile, a pixel more, a single pixel, a long strip past 16 tiles' worth."""
    from app.core.chat.llama4_images import image_tokens

    list(client.load(tiny_vision_model_336, SETTINGS))
    for size in [(336, 336), (337, 336), (1, 1), (40, 6000)]:
        messages = [ChatMessage(Role.USER, QUESTION, images=(str(_picture(tmp_path, size)),))]
        done = list(client.chat(messages, SHORT))[-1]
        assert isinstance(done, ev.Finished), done
        assert done.image_tokens == image_tokens(*size), size
    assert image_tokens(336, 336) == 147 and image_tokens(337, 336) == 437


def test_an_image_in_the_middle_of_a_message_stays_there(
    client: EngineClient, tiny_vision_model_336: Path, tmp_path: Path
) -> None:
    from app.core.chat.llama4_format import render_llama4

    list(client.load(tiny_vision_model_336, SETTINGS))
    picture = str(_picture(tmp_path, (200, 150)))
    text = "Before the picture. After it."
    middle = [ChatMessage(Role.USER, text, images=(picture,), image_offsets=(19,))]
    front = [ChatMessage(Role.USER, text, images=(picture,))]
    assert render_llama4(middle).index("<|image|>") > render_llama4(middle).index("Before")
    done = list(client.chat(middle, SHORT))[-1]
    assert isinstance(done, ev.Finished), done
    assert done.image_tokens == 147
    assert done.prompt_tokens == client.count_tokens(messages=middle)
    assert client.count_tokens(messages=middle) == client.count_tokens(messages=front)
