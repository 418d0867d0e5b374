"""``herd serve``: a local OpenAI-compatible HTTP server on one engine (Starlette, uvicorn).

The server is a thin caller of the core, like ``herd chat``: the model loads through
:mod:`app.core.load`, replies come from :class:`~app.core.engine.client.EngineClient`.
"""
