"""Binding the address and running uvicorn on it; who may listen where."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import sys
import threading
from collections.abc import Iterator

import uvicorn

from app.core.engine.client import EngineClient
from app.server.routes import ServerConfig, build_app


class _Server(uvicorn.Server):
    """uvicorn's server, but a stop signal ends ``run`` with a return.

    uvicorn re-raises the signal after its graceful shutdown, which would end Herd before
    the engine process is shut down (and Ctrl+C with a traceback).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def is_loopback(host: str) -> bool:
    """Whether ``host`` reaches only this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one).

    Raises:
        OSError: the address cannot be bound (in use, not this machine's).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":  # on Windows it would let another program share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    """The API's base URL on the bound socket (the real port)."""
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def serve(engine: EngineClient, config: ServerConfig, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl+C, SIGTERM); the engine stays the caller's to close."""
    app = build_app(engine, config)
    # log_config=None: uvicorn's records go to Herd's log; no access log (no headers, no key).
    server = _Server(
        uvicorn.Config(
            app, log_config=None, access_log=False, timeout_graceful_shutdown=5, lifespan="off"
        )
    )
    server.run(sockets=[sock])
