"""The Starlette application: OpenAI's chat-completions API on one loaded engine."""

from __future__ import annotations

import hmac
import json
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.core.chat.tool_calls import ParsedReply, parse_tool_calls
from app.core.engine.client import EngineClient
from app.core.settings import SamplingSettings
from app.server.errors import ApiError, error_body
from app.server.gate import RETRY_AFTER_S, Gate
from app.server.generation import Generation, api_error
from app.server.tool_replies import HeldReply
from app.server.turn import EngineTurn
from app.server.wire import (
    ChatRequest,
    Reply,
    models_body,
    parse_request,
    tool_call_dicts,
    tool_names,
)

MAX_BODY_BYTES = 32 * 1024 * 1024
NO_MODEL = "No model is loaded in Herd yet; load one in the window, then try again."


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the server answers: the model's name, the key, CORS, the line, the limits."""

    model_id: str
    api_key: str | None = field(default=None, repr=False)  # never in a log line
    cors: tuple[str, ...] = ()
    queue_size: int = 8
    max_body_bytes: int = MAX_BODY_BYTES
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    # The window's server: the model the window has loaded now (None: none; requests get
    # 503), and the turn on the engine that the window's chats share.
    current_model: Callable[[], str | None] | None = None
    engine_turn: EngineTurn | None = None


class _CleanedStream(EventSourceResponse):
    """An SSE response that ends the request's turn however the stream ends (disconnects too)."""

    def __init__(self, content: AsyncIterator[str], cleanup: Callable[[], Awaitable[None]]) -> None:
        super().__init__(content, sep="\n", ping=15)
        self._cleanup = cleanup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._cleanup()


def build_app(engine: EngineClient, config: ServerConfig) -> Starlette:
    """The server's ASGI app; ``engine`` has the model loaded and is used one request at a time."""
    gate = Gate(config.queue_size, config.engine_turn)
    started = int(time.time())

    def loaded_model() -> str | None:
        return config.model_id if config.current_model is None else config.current_model()

    def model_or_503() -> str:
        name = loaded_model()
        if not name:
            headers = {"Retry-After": str(RETRY_AFTER_S)}
            raise ApiError(503, NO_MODEL, "model_not_loaded", headers=headers)
        return name

    def authorize(request: Request) -> None:
        if config.api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, key = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            key.strip().encode(), config.api_key.encode()
        ):
            raise ApiError(401, "Incorrect or missing API key.", "invalid_api_key")

    async def health(request: Request) -> Response:
        health = {"status": "ok", "busy": gate.busy, "waiting": gate.waiting}
        return JSONResponse({**health, "model": loaded_model()})

    async def models(request: Request) -> Response:
        authorize(request)
        return JSONResponse(models_body(loaded_model(), started))

    async def chat_completions(request: Request) -> Response:
        authorize(request)
        model_or_503()
        body = await _read_json(request, config.max_body_bytes)
        folder = tempfile.TemporaryDirectory(prefix="herd-serve-")
        try:
            chat = parse_request(body, config.sampling, Path(folder.name))
            generation = Generation(engine, chat)
            await gate.enter(generation.cancel)
        except BaseException:
            folder.cleanup()
            raise

        async def cleanup() -> None:
            try:
                await anyio.to_thread.run_sync(generation.close)
            finally:
                gate.leave()
                folder.cleanup()

        try:
            model_id = model_or_503()  # the window may have unloaded it while this waited
            await generation.start()
            if chat.stream:
                return _CleanedStream(_events(generation, chat, model_id), cleanup)
            text = await _collect(generation, request)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await cleanup()
            raise
        with anyio.CancelScope(shield=True):
            await cleanup()
        if generation.finished is None:
            assert generation.failed is not None
            raise api_error(generation.failed)
        reply = parse_tool_calls(text, tool_names(chat.tools)) if chat.tools else ParsedReply(text)
        return JSONResponse(
            Reply(model_id).completion(reply, generation.finished, generation.finish_reason)
        )

    middleware = []
    if config.cors:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ],
        middleware=middleware,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )


async def _events(generation: Generation, chat: ChatRequest, model_id: str) -> AsyncIterator[str]:
    """The SSE data lines: a role chunk, text chunks, the finish (and usage), ``[DONE]``."""
    reply = Reply(model_id)
    held = HeldReply(tool_names(chat.tools) if chat.tools else None)
    yield json.dumps(reply.chunk({"role": "assistant", "content": ""}))
    async for piece in generation.pieces():
        if text := held.feed(piece):
            yield json.dumps(reply.chunk({"content": text}))
    rest = held.end()
    if rest.content:
        yield json.dumps(reply.chunk({"content": rest.content}))
    if generation.finished is not None:
        reason = generation.finish_reason
        for index, call in enumerate(tool_call_dicts(rest.calls)):
            yield json.dumps(reply.chunk({"tool_calls": [{"index": index, **call}]}))
            reason = "tool_calls"
        yield json.dumps(reply.chunk({}, reason))
        if chat.include_usage:
            yield json.dumps(reply.usage_chunk(generation.finished))
    elif generation.failed is not None:
        error = api_error(generation.failed)
        yield json.dumps(error_body(error.message, "server_error", error.code))
    yield "[DONE]"


async def _collect(generation: Generation, request: Request) -> str:
    """The whole reply; a client that leaves before it is done stops it."""
    pieces: list[str] = []

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        generation.cancel.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        async for piece in generation.pieces():
            pieces.append(piece)
        group.cancel_scope.cancel()
    return "".join(pieces)


async def _read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, read up to ``limit`` bytes (413 beyond, 400 if not JSON)."""
    too_large = ApiError(413, f"The request body is over {limit // 2**20} MiB.", "body_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise too_large
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.", "invalid_json") from None


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = "not_found" if exc.status_code == 404 else None
    return ApiError(exc.status_code, str(exc.detail), code).response()
