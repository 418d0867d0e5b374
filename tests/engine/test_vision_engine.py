"""Images through the real engine: the tiny Llama 4 with its tiny vision projector (mtmd)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.core import events as ev
from app.core.chat import attachments
from app.core.chat.llama4_format import IMAGE
from app.core.chat.messages import ChatMessage, Role
from app.core.engine.client import EngineClient
from app.core.errors import EngineError
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings

SETTINGS = LoadSettings(n_ctx=512, n_threads=1)  # one thread: see test_engine_client.py
SHORT = SamplingSettings(max_tokens=8, seed=7)
QUESTION = "What is in this picture?"


@pytest.fixture
def jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "sky.jpg"
    Image.new("RGB", (28, 28), (60, 120, 230)).save(path, quality=90)
    return path


def _loaded(client: EngineClient, model: Path, **kwargs: Any) -> ev.ModelFacts:
    events = list(client.load(model, SETTINGS, **kwargs))
    assert isinstance(events[-1], ev.Loaded), events[-1]
    return events[-1].facts


def _reply(client: EngineClient, messages: list[ChatMessage]) -> ev.Finished:
    events = list(client.chat(messages, SHORT))
    assert isinstance(events[-1], ev.Finished), events[-1]
    return events[-1]


def test_projector_found_next_to_the_model(client: EngineClient, tiny_vision_model: Path) -> None:
    facts = _loaded(client, tiny_vision_model)
    assert facts.vision
    assert Path(facts.projector).name == "mmproj-tiny-llama4-scout.gguf"
    assert not facts.vision_error


def test_png_and_jpeg_get_a_reply_and_count_their_tokens(
    client: EngineClient, tiny_vision_model: Path, png: Path, jpeg: Path
) -> None:
    _loaded(client, tiny_vision_model)
    plain = [ChatMessage(Role.USER, QUESTION)]
    base = _reply(client, plain)
    assert base.image_tokens == 0
    n_text = client.count_tokens(messages=plain)
    assert base.prompt_tokens == n_text

    for image in (png, jpeg):
        with_image = [ChatMessage(Role.USER, QUESTION, images=(str(image),))]
        started = time.perf_counter()
        done = _reply(client, with_image)
        elapsed = time.perf_counter() - started
        assert done.generated_tokens > 0 and done.text
        assert done.image_tokens > 0
        # the prompt grew by the image's tokens (its begin/end markers included)
        assert done.prompt_tokens == base.prompt_tokens + done.image_tokens
        # the token meter counts exactly what the engine evaluated
        assert client.count_tokens(messages=with_image) == done.prompt_tokens
        print(f"{image.suffix}: {done.image_tokens} image tokens, reply in {elapsed:.3f} s")

    # Llama 4's official layout with the tiny projector's 28 px tiles of 1 token each: the
    # 64 x 48 PNG is 3 x 2 tiles, 4 separators, 2 row ends, <|image|> and the global view
    # (16 with <|image_start|> and <|image_end|>); the 28 x 28 JPEG is one tile (4)
    two = [ChatMessage(Role.USER, QUESTION, images=(str(png), str(jpeg)))]
    assert client.count_tokens(messages=two) == base.prompt_tokens + 16 + 4


def test_stored_refs_and_the_next_turn_reuse_the_cache(
    client: EngineClient, tiny_vision_model: Path, png: Path, paths: AppPaths
) -> None:
    _loaded(client, tiny_vision_model)
    stored = attachments.import_image(paths, png)
    first = [ChatMessage(Role.USER, QUESTION, images=(stored.ref,))]
    done = _reply(client, first)
    encoded = _slices_encoded(paths)
    assert encoded == 7  # 3 x 2 tiles + the global view
    history = [*first, ChatMessage(Role.ASSISTANT, done.text), ChatMessage(Role.USER, "And?")]
    again = _reply(client, history)
    assert again.image_tokens == done.image_tokens
    assert again.prompt_tokens > done.prompt_tokens
    assert _slices_encoded(paths) == encoded  # the image came from the cache, not the projector


def _slices_encoded(paths: AppPaths) -> int:
    return paths.engine_log.read_text(errors="replace").count("encoding image slice")


def test_image_without_projector_is_a_clear_failure(
    client: EngineClient, tiny_scout: Path, png: Path
) -> None:
    facts = _loaded(client, tiny_scout, vision=False)
    assert not facts.vision
    events = list(client.chat([ChatMessage(Role.USER, QUESTION, images=(str(png),))], SHORT))
    assert len(events) == 1 and isinstance(events[0], ev.Failed)
    assert "cannot see images" in events[0].message
    # the engine was never asked, and still works
    assert isinstance(_reply(client, [ChatMessage(Role.USER, QUESTION)]), ev.Finished)
    # without a projector, an image counts as its placeholder
    with_image = [ChatMessage(Role.USER, QUESTION, images=(str(png),))]
    assert (
        client.count_tokens(messages=with_image)
        == client.count_tokens(messages=[ChatMessage(Role.USER, QUESTION)]) + 1
    )


def test_engine_refuses_images_when_no_projector_is_loaded(
    client: EngineClient, tiny_scout: Path, png: Path
) -> None:
    _loaded(client, tiny_scout, vision=False)
    prompt = f"<|begin_of_text|><|header_start|>user<|header_end|>\n\n{IMAGE}Hi<|eot|>"
    events = list(client.complete(prompt, SHORT, images=[png]))
    assert isinstance(events[-1], ev.Failed)
    assert "no vision projector" in events[-1].message
    assert client.alive


def test_bad_image_is_a_failed_event_not_a_crash(
    client: EngineClient, tiny_vision_model: Path, tmp_path: Path
) -> None:
    _loaded(client, tiny_vision_model)
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture")
    messages = [ChatMessage(Role.USER, QUESTION, images=(str(fake),))]
    events = list(client.chat(messages, SHORT))
    assert isinstance(events[-1], ev.Failed)
    assert "fake.png is not an image" in events[-1].message
    with pytest.raises(EngineError, match="not an image"):
        client.count_tokens(messages=messages)
    assert client.alive
    assert isinstance(_reply(client, [ChatMessage(Role.USER, QUESTION)]), ev.Finished)


def test_a_projector_that_does_not_fit_leaves_a_text_model_and_a_warning(
    client: EngineClient, tiny_maverick: Path, tiny_vision_model: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    model = folder / "maverick.gguf"
    shutil.copyfile(tiny_maverick, model)
    projector = tiny_vision_model.with_name("mmproj-tiny-llama4-scout.gguf")
    # a text file posing as a projector: mtmd refuses it, the model still loads
    broken = folder / "mmproj-broken.gguf"
    broken.write_bytes(projector.read_bytes()[:4096])
    facts = _loaded(client, model)
    assert not facts.vision
    assert "could not be loaded" in facts.vision_error
    assert any("vision projector" in w for w in facts.warnings)
    assert isinstance(_reply(client, [ChatMessage(Role.USER, QUESTION)]), ev.Finished)


def test_stop_during_an_image_prompt(
    client: EngineClient, tiny_vision_model: Path, png: Path
) -> None:
    from app.core.jobs import CancelToken

    _loaded(client, tiny_vision_model)
    cancel = CancelToken()
    cancel.cancel()  # Stop at once: lands in the image's prefill or at the first token
    messages = [ChatMessage(Role.USER, QUESTION, images=(str(png),))]
    events = list(client.chat(messages, SamplingSettings(max_tokens=200, seed=1), cancel))
    assert isinstance(events[-1], ev.Finished), events[-1]
    assert events[-1].stop_reason is ev.StopReason.USER
    assert events[-1].generated_tokens <= 1
    done = _reply(client, messages)  # the engine and its cache are fine afterwards
    assert done.generated_tokens > 0 and done.image_tokens == 16


def test_reuse_point_keeps_images_whole() -> None:
    from app.core.engine.media_chunks import MediaChunk
    from app.core.engine.multimodal import reuse_point

    image = object()
    chunks = [MediaChunk((1, 2)), MediaChunk((-5, -6, -7), image), MediaChunk((3, 4, 5))]
    assert reuse_point([1, 2, -5, -6, -7, 3, 4, 5], chunks) == 7  # never the last token
    assert reuse_point([1, 2, -5, -6, -7, 3, 9], chunks) == 6
    assert reuse_point([1, 2, -5, -6, -9], chunks) == 2  # half an image: evaluate it again
    assert reuse_point([1, 2, -5, -6], chunks) == 2
    assert reuse_point([7], chunks) == 0
    assert reuse_point([], chunks) == 0
