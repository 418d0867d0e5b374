"""LocalServerController: the window's "Local server" switch, on the window's own engine.

The server (:mod:`app.server`, Starlette and uvicorn) runs in a thread of its own on the
engine the window uses: the same loaded model, plan and Llama 4 format. Its requests and the
window's chats take turns on the engine (:class:`~app.server.turn.EngineTurn`), so their
tokens never interleave. While no model is loaded (or one is loading) it answers 503 with
OpenAI's error body. Starting binds the port at once, so a busy port is said at once;
stopping only asks the thread and watches it end, so the window never waits on it, except
when the window closes (joined then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QWidget

from app.core import events as ev
from app.core.errors import HerdError
from app.core.settings import Settings
from app.server.turn import SERVER
from app.ui.bridge import EngineBridge
from app.ui.settings.server_page import server_problem

if TYPE_CHECKING:
    from app.server.listen import ServerThread

logger = logging.getLogger(__name__)

WATCH_MS = 50  # how often a stopping server is looked at
JOIN_TIMEOUT_S = 5.0


class LocalServerError(HerdError):
    """The local server could not start."""


class LocalServerController(QObject):
    """Starts and stops the window's server as the settings say; shows it in the status bar."""

    state_changed = Signal(str)  # what the server is doing, in words (for the Settings page)
    settings_requested = Signal()

    def __init__(
        self,
        bridge: EngineBridge,
        parent: QWidget,
        *,
        report: Callable[[HerdError], None],
        say: Callable[[str, int], None],
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._report = report
        self._say = say
        self._thread: ServerThread | None = None
        self._stopping: list[ServerThread] = []
        self._wanted: tuple[object, ...] | None = None  # what it runs with (None: off)
        self._pending: Settings | None = None  # to start once the old server has ended
        self._model: str | None = None  # read by the server's thread: a plain str swap
        self._failure = ""
        self.label = QLabel(parent)
        self.label.setOpenExternalLinks(False)
        self.label.linkActivated.connect(self._on_label_link_activated)
        self.label.hide()
        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_MS)
        self._watch.timeout.connect(self._on_watch_timeout)
        bridge.loaded.connect(self._on_bridge_loaded)
        bridge.busy_changed.connect(self._on_bridge_busy_changed)
        bridge.planned.connect(self._on_bridge_model_changing)  # also a load that ends a chat
        for gone in (bridge.unloaded, bridge.load_cancelled):
            gone.connect(self._on_bridge_model_gone)
        bridge.load_failed.connect(self._on_bridge_model_gone)
        bridge.engine_crashed.connect(self._on_bridge_model_gone)
        self._on_bridge_loaded(bridge.facts)

    # -- state -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The API's base URL while the server is on ("" when off)."""
        return self._thread.url if self._thread is not None else ""

    @property
    def running(self) -> bool:
        """Whether the server is on."""
        return self._thread is not None

    def describe(self) -> str:
        """What the server is doing, for people."""
        if self._thread is not None:
            model = self._model or "no model loaded yet: requests get 503 until one is"
            return f"On at {self._thread.url} ({model})."
        if self._pending is not None:
            return "Starting…"
        if self._failure:
            return f"Off: {self._failure}"
        return "Off."

    # -- switching ---------------------------------------------------------------------
    def apply(self, settings: Settings) -> None:
        """Start, restart or stop the server as ``settings`` say (never blocks the window).

        A restart (a new port, key or sampling defaults) starts once the old server has
        let go of its port.
        """
        wanted = None
        if settings.server_enabled:
            key = settings.server_api_key
            wanted = (settings.server_host, settings.server_port, key, settings.sampling)
        if wanted == self._wanted:
            return  # also after a failed start: a change (or off and on) tries again
        self.stop()
        self._wanted = wanted
        self._pending = settings if wanted is not None else None
        self._start_when_free()

    def stop(self) -> None:
        """Stop the server (it ends in its thread; the window does not wait for it)."""
        thread, self._thread = self._thread, None
        self._wanted = self._pending = None
        self._failure = ""
        if thread is None:
            self._show()
            return
        self._bridge.turn.interrupt(SERVER)  # a reply in progress ends now
        thread.stop()
        self._stopping.append(thread)
        self._watch.start()
        self._show()

    def shutdown(self) -> None:
        """Stop the server and join its thread (the window is closing)."""
        self.stop()
        self._watch.stop()
        for thread in self._stopping:
            if not thread.join(JOIN_TIMEOUT_S):
                logger.warning("the local server did not stop in %.0f s", JOIN_TIMEOUT_S)
        self._stopping.clear()

    def _start_when_free(self) -> None:
        if self._pending is not None and not self._stopping:
            settings, self._pending = self._pending, None
            self._start(settings)
        self._show()

    def _start(self, settings: Settings) -> None:
        from app.server.listen import ServerThread, bind  # uvicorn is loaded only when needed
        from app.server.routes import ServerConfig

        host, port, key = settings.server_host, settings.server_port, settings.server_api_key
        self._failure = ""
        problem = server_problem(host, key)
        try:
            if problem:
                raise LocalServerError("The local server was not started.", problem)
            try:
                sock = bind(host, port)
            except OSError as exc:
                raise LocalServerError(
                    f"The local server cannot listen on {host}:{port}: {exc.strerror or exc}.",
                    "Another program may be using that port: choose another one in "
                    "Settings > Local Server (0 picks a free one).",
                ) from None
        except LocalServerError as exc:
            self._failure = exc.one_line()
            self._report(exc)
            return
        config = ServerConfig(
            model_id="",
            api_key=key or None,
            sampling=settings.sampling,
            current_model=self._current_model,
            engine_turn=self._bridge.turn,
        )
        self._thread = ServerThread(self._bridge.client, config, sock, host)
        self._thread.start()
        logger.info("local server on %s", self._thread.url)  # the address only, never the key

    def _current_model(self) -> str | None:
        return self._model  # on the server's thread

    def _show(self) -> None:
        if self._thread is not None:
            url = self._thread.url
            self.label.setText(f'<a href="copy">Server on {url}</a>')
            self.label.setToolTip(
                f"The local OpenAI-compatible server is on at {url}.\n"
                "Click to copy the address; change it in Settings > Local Server."
            )
            self.label.show()
        elif self._failure:
            self.label.setText('<a href="settings">Server off: see Settings</a>')
            self.label.setToolTip(self._failure)
            self.label.show()
        else:
            self.label.hide()
        self.state_changed.emit(self.describe())

    # -- from the bridge and the label -------------------------------------------------
    @Slot(object)
    def _on_bridge_loaded(self, facts: ev.ModelFacts | None) -> None:
        self._model = Path(facts.path).stem if facts is not None else None
        self._show()

    @Slot(bool)
    def _on_bridge_busy_changed(self, busy: bool) -> None:
        if busy and not self._bridge.generating:  # a load or an unload: the model changes
            self._on_bridge_model_changing()

    def _on_bridge_model_changing(self, *_args: object) -> None:
        self._bridge.turn.interrupt(SERVER)  # its reply ends now; the next ones get 503
        self._model = None
        self._show()

    def _on_bridge_model_gone(self, *_args: object) -> None:
        self._model = None
        self._show()

    @Slot(str)
    def _on_label_link_activated(self, link: str) -> None:
        if link == "copy" and self._thread is not None:
            QGuiApplication.clipboard().setText(self._thread.url)
            self._say(f"Copied {self._thread.url} (the local server's address).", 5000)
        else:
            self.settings_requested.emit()

    @Slot()
    def _on_watch_timeout(self) -> None:
        self._stopping = [t for t in self._stopping if not t.join(0)]
        if not self._stopping:
            self._watch.stop()
            self._start_when_free()
