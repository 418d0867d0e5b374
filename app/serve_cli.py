"""``herd serve MODEL``: the model behind a local OpenAI-compatible API.

The model loads exactly as ``herd chat`` loads it (the load job, the same wish flags);
then the first line on stdout is ``serving http://HOST:PORT/v1`` for scripts to read.
"""

from __future__ import annotations

import argparse
import sys

from app import machine_args
from app.cli import EXIT_OK, fail, load_for_cli, load_request
from app.core.engine.client import EngineClient
from app.core.errors import HerdError
from app.core.paths import AppPaths
from app.core.settings import Settings

DEFAULT_PORT = 8080


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the command line."""
    serve = sub.add_parser("serve", help="serve a model over a local OpenAI-compatible API")
    serve.add_argument("model", help="the .gguf file (the first part of a split model)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default: 8080; 0 picks a free one)"
    )
    serve.add_argument(
        "--api-key",
        metavar="KEY",
        help="require `Authorization: Bearer KEY` (needed to listen beyond this machine)",
    )
    serve.add_argument(
        "--cors",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser pages from ORIGIN to call the API (repeatable; off by default)",
    )
    serve.add_argument(
        "--queue-size",
        type=int,
        metavar="N",
        default=8,
        help="requests that may wait for the engine; more get 503 (default: 8)",
    )
    machine_args.add_wish_args(
        serve, ctx_help="context length in tokens (default: the model's own, else the plan's)"
    )
    machine_args.add_machine_args(serve)
    serve.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: the plan's choice)"
    )
    serve.add_argument(
        "--show-plan", action="store_true", help="print the load plan to stderr before serving"
    )
    serve.add_argument(
        "--projector",
        metavar="MMPROJ",
        help="the vision projector GGUF (default: the mmproj*.gguf next to the model)",
    )


def run(args: argparse.Namespace, paths: AppPaths, settings: Settings) -> int:
    """Load the model, print the URL line, serve until interrupted."""
    from app.server.listen import bind, is_loopback, serve, url_of
    from app.server.routes import ServerConfig

    if not is_loopback(args.host) and not args.api_key:
        return fail(
            f"refusing to listen on {args.host} without --api-key: anyone who can reach it "
            "could use the model; pass --api-key KEY (or keep the default 127.0.0.1)"
        )
    if not 0 <= args.port <= 65535:
        return fail("--port must be from 0 to 65535 (0 picks a free one)")
    if args.queue_size < 0:
        return fail("--queue-size must be 0 or more")
    try:
        info_, request = load_request(args, paths, settings, with_projector=bool(args.projector))
    except HerdError as exc:
        return fail(exc.one_line())
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        return fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    with sock, EngineClient(paths) as engine:
        code = load_for_cli(engine, request, show_plan=args.show_plan)
        if code is not None:
            return code
        config = ServerConfig(
            model_id=info_.path.stem,
            api_key=args.api_key or None,
            cors=tuple(args.cors),
            queue_size=args.queue_size,
            sampling=settings.sampling,
        )
        sys.stdout.write(f"serving {url_of(sock, args.host)}\n")
        sys.stdout.flush()
        serve(engine, config, sock)
    return EXIT_OK
