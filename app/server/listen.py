"""Binding the address and running uvicorn on it; who may listen where."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator

import uvicorn

from app.core.engine.client import EngineClient
from app.server.routes import ServerConfig, build_app

logger = logging.getLogger(__name__)


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


def _server(engine: EngineClient, config: ServerConfig, graceful_s: int) -> _Server:
    app = build_app(engine, config)
    # log_config=None: uvicorn's records go to Herd's log; no access log (no headers, no key).
    return _Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=graceful_s,
            lifespan="off",
        )
    )


def serve(engine: EngineClient, config: ServerConfig, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl+C, SIGTERM); the engine stays the caller's to close."""
    _server(engine, config, 5).run(sockets=[sock])


class ServerThread:
    """The server on a bound socket, in a thread of its own (the window's local server).

    :meth:`stop` only asks; the thread ends within about a second (requests still running
    get ``graceful_s`` to end, then are cancelled), and :meth:`join` waits for it.
    """

    def __init__(
        self,
        engine: EngineClient,
        config: ServerConfig,
        sock: socket.socket,
        host: str,
        graceful_s: int = 1,
    ) -> None:
        self.url = url_of(sock, host)
        self._sock = sock
        self._server = _server(engine, config, graceful_s)
        self._thread = threading.Thread(target=self._run, name="herd-local-server", daemon=True)

    @property
    def alive(self) -> bool:
        """Whether the server's thread is still running."""
        return self._thread.is_alive()

    @property
    def started(self) -> bool:
        """Whether the server has started taking requests."""
        return bool(self._server.started)

    def start(self) -> None:
        """Start serving (the socket is already listening: early requests wait in its line)."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the server to stop (it returns at once)."""
        self._server.should_exit = True

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; True when it has."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except Exception:  # noqa: BLE001 - the window must survive its server
            logger.exception("the local server stopped with an error")
        finally:
            self._sock.close()
