"""The OpenAI-compatible API of ``herd serve`` through the real ``openai`` client and raw HTTP."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
from PIL import Image

from tests.server.conftest import API_KEY, REPO, Server

HI = [{"role": "user", "content": "hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=API_KEY, max_retries=0, timeout=60)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def test_first_line_is_the_url(server: Server) -> None:
    assert re.fullmatch(r"serving http://127\.0\.0\.1:\d+/v1\n", server.first_line)
    assert not server.url.endswith(":0/v1")


def test_models_lists_the_loaded_model(client: openai.OpenAI, tiny_scout: Path) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [tiny_scout.stem]


def test_health(server: Server) -> None:
    answer = httpx.get(f"{server.root}/health", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_usage_is_the_engines_count(
    client: openai.OpenAI, tiny_scout: Path, tmp_path: Path
) -> None:
    reply = client.chat.completions.create(
        model="any",
        messages=HI,
        max_tokens=8,
        seed=1,
        temperature=0.6,  # type: ignore[arg-type]
    )
    # `herd chat --stats` prints the engine's Finished counts for the same conversation
    env_home = tmp_path / "home"
    chat = subprocess.run(
        [sys.executable, "-m", "app", "chat", str(tiny_scout), "--prompt", "hi"]
        + ["--max-tokens", "8", "--seed", "1", "--temperature", "0.6", "--stats"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**_env(), "HERD_HOME": str(env_home)},
        timeout=120,
    )
    assert chat.returncode == 0, chat.stderr
    stats = re.search(r"\[(\d+) tokens, .* prompt (\d+) tokens", chat.stderr)
    assert stats, chat.stderr
    assert reply.usage is not None
    assert reply.usage.completion_tokens == int(stats[1])
    assert reply.usage.prompt_tokens == int(stats[2])
    assert reply.usage.total_tokens == int(stats[1]) + int(stats[2])
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason in {"stop", "length"}


def _env() -> dict[str, str]:
    import os

    return dict(os.environ, PYTHONPATH=str(REPO))


def test_stream_joins_to_the_whole_reply(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(
        model="m",
        messages=HI,
        max_tokens=12,
        temperature=0,  # type: ignore[arg-type]
    )
    stream = client.chat.completions.create(
        model="m",
        messages=HI,  # type: ignore[arg-type]
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == whole.choices[0].finish_reason


def test_sse_framing_on_the_wire(server: Server) -> None:
    body = {"messages": HI, "max_tokens": 4, "seed": 1, "stream": True}
    with httpx.stream(
        "POST", f"{server.url}/chat/completions", json=body, headers=_auth(), timeout=60
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(answer.iter_bytes())
    events = raw.split(b"\n\n")
    assert events[-1] == b""
    assert events[-2] == b"data: [DONE]"
    for event in events[:-2]:
        if event.startswith(b":"):  # a keep-alive comment
            continue
        assert event.startswith(b"data: "), event
        assert json.loads(event[len(b"data: ") :])["object"] == "chat.completion.chunk"


def test_tool_definitions_reach_the_prompt(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="m", messages=HI, max_tokens=2, seed=1)  # type: ignore[arg-type]
    with_tool = client.chat.completions.create(
        model="m",
        messages=HI,
        max_tokens=2,
        seed=1,
        tools=[WEATHER_TOOL],  # type: ignore[arg-type,list-item]
    )
    assert plain.usage is not None and with_tool.usage is not None
    assert with_tool.usage.prompt_tokens > plain.usage.prompt_tokens + 20


def test_tool_result_messages_are_accepted(client: openai.OpenAI) -> None:
    messages = [
        *HI,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    reply = client.chat.completions.create(
        model="m",
        messages=messages,
        max_tokens=2,
        seed=1,
        tools=[WEATHER_TOOL],  # type: ignore[arg-type,list-item]
    )
    assert reply.usage is not None and reply.usage.completion_tokens >= 1


def test_stop_string_cuts_the_reply(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="m", messages=HI, max_tokens=12, temperature=0)  # type: ignore[arg-type]
    text = whole.choices[0].message.content or ""
    assert len(text) > 3
    stop = text[2:4]
    cut = client.chat.completions.create(
        model="m",
        messages=HI,
        max_tokens=12,
        temperature=0,
        stop=[stop],  # type: ignore[arg-type]
    )
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_wrong_key_is_401(server: Server) -> None:
    wrong = openai.OpenAI(base_url=server.url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.models.list()
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key"  # type: ignore[index]


def test_bad_json_is_400(server: Server) -> None:
    answer = httpx.post(
        f"{server.url}/chat/completions", content=b"{not json", headers=_auth(), timeout=10
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["type"] == "invalid_request_error"


def test_missing_messages_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=[])


def test_unknown_path_is_404(server: Server) -> None:
    answer = httpx.get(f"{server.url}/nothing", headers=_auth(), timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_too_large_body_is_413(server: Server) -> None:
    body = b" " * (33 * 1024 * 1024)
    answer = httpx.post(f"{server.url}/chat/completions", content=body, headers=_auth(), timeout=60)
    assert answer.status_code == 413
    assert "error" in answer.json()


def test_full_context_gives_the_numbers(client: openai.OpenAI) -> None:
    long = [{"role": "user", "content": "word " * 20000}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=long, max_tokens=2)  # type: ignore[arg-type]
    assert caught.value.code == "context_length_exceeded"
    assert re.search(r"is \d+ tokens; the context holds \d+", caught.value.message)


def _png_url() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_images_are_checked(client: openai.OpenAI) -> None:
    def ask(url: str) -> None:
        content = [
            {"type": "text", "text": "what is it?"},
            {"type": "image_url", "image_url": {"url": url}},
        ]
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": content}],
            max_tokens=2,  # type: ignore[arg-type,misc]
        )

    with pytest.raises(openai.BadRequestError, match="data: URLs"):
        ask("https://example.com/cat.png")
    with pytest.raises(openai.BadRequestError):
        ask("data:image/png;base64," + base64.b64encode(b"not a png").decode())
    # a real image on a model without a projector: the engine's refusal, as a 400
    with pytest.raises(openai.BadRequestError):
        ask(_png_url())


def test_cors_is_off_by_default(server: Server) -> None:
    headers = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    answer = httpx.options(f"{server.url}/chat/completions", headers=headers, timeout=10)
    assert "access-control-allow-origin" not in answer.headers


def test_more_than_one_choice_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="'n' must be 1"):
        client.chat.completions.create(model="m", messages=HI, max_tokens=2, n=2)  # type: ignore[arg-type]
