"""A local OpenAI-compatible HTTP server on one engine (Starlette, uvicorn).

Two thin callers of the core use it: ``herd serve`` (the model loads through
:mod:`app.core.load`) and the window's "Local server" switch (the window's own engine and
model, taking turns with its chats, see :mod:`app.server.turn`). Replies come from
:class:`~app.core.engine.client.EngineClient`.
"""
