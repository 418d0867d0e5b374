"""ReplyStream: one reply written into the open conversation, from its prompt to its end.

The prompt goes to the engine with the chat's sampling (its own, else the defaults); the
streamed text goes to the transcript and, as it grows, to the store (:class:`ChatSession`);
how it ended (finished, failed, stopped, the engine gone) goes to both. Continue streams
into the last reply instead of a new one, and its end covers the whole reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal, Slot

from app.core import events as ev
from app.core.chat.budget import OverflowPolicy
from app.core.chat.continuation import continuable, continued
from app.core.chat.llama4_format import EOM
from app.core.chat.session import ChatSession
from app.core.chat.store_schema import ReplyStats, StoredMessage
from app.core.errors import HerdError
from app.core.settings import SamplingSettings
from app.ui.bridge import EngineBridge
from app.ui.chat.chat_view import ChatView
from app.ui.chat.composer import Composer

logger = logging.getLogger(__name__)


class ReplyStream(QObject):
    """Starts, streams, saves and ends the open conversation's reply."""

    ended = Signal()  # the reply ended, however: the list and Continue may change

    def __init__(
        self,
        session: ChatSession,
        *,
        bridge: EngineBridge,
        chat_view: ChatView,
        composer: Composer,
        policy: Callable[[], OverflowPolicy],
        defaults: Callable[[], SamplingSettings],
        report: Callable[[HerdError], None],
        parent: QObject,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._bridge = bridge
        self._view = chat_view
        self._composer = composer
        self._policy = policy
        self._defaults = defaults
        self._report = report
        self._streaming = self._closed = False  # streaming: the open chat's reply is written
        bridge.token_batch.connect(self._on_bridge_token_batch)
        bridge.reply_finished.connect(self._on_bridge_reply_finished)
        bridge.reply_failed.connect(self._on_bridge_reply_failed)
        bridge.engine_crashed.connect(self._on_bridge_engine_crashed)
        bridge.loaded.connect(self._on_bridge_loaded)

    @property
    def streaming(self) -> bool:
        """Whether a reply is being written into the open conversation."""
        return self._streaming

    def sampling(self) -> SamplingSettings:
        """What the next reply of the open chat is sampled with: its own, else the defaults."""
        return self._session.sampling or self._defaults()

    def can_continue(self) -> bool:
        """Whether Continue can extend the last reply now (a model loaded, nothing running)."""
        return (
            not self._streaming
            and not self._bridge.busy
            and self._bridge.facts is not None
            and not self._bridge.continue_problem
            and self._session.continuable() is not None
        )

    def show_continue(self, messages: Sequence[StoredMessage] | None = None) -> None:
        """Offer Continue under the last reply when it can be extended.

        ``messages``: the open chat's, when just read. When the model's format cannot
        continue, Continue is shown disabled, saying why.
        """
        reply = continuable(messages) if messages is not None else self._session.continuable()
        self._view.set_continue(reply is not None, self._bridge.continue_problem)

    def close(self) -> None:
        """The window is closing: late text is no longer shown."""
        self._closed = True

    def start(self, *, continue_last: bool = False) -> bool:
        """Ask the engine for a reply (``continue_last``: more of the last one).

        Returns:
            Whether it started (else the person was told why).
        """
        messages, pinned = self._session.prompt()  # before the reply: it is not its own prompt
        try:
            if continue_last:
                before = self._session.begin_continue()
            else:
                self._session.begin_reply()
        except HerdError as exc:
            self._report(exc)
            return False
        self._streaming = True
        if continue_last:
            self._view.continue_reply(before.content)
        else:
            self._view.begin_reply()
        self._view.set_busy(True)
        self._composer.set_generating(True)
        self._bridge.send(
            messages, self.sampling(), self._policy(), pinned, continue_last=continue_last
        )
        return True

    def stop(self, note: str) -> None:
        """Stop the reply being written (another chat, an undo): its text is kept."""
        if not self._streaming:
            return
        self._bridge.stop()
        self._streaming = False
        self._session.interrupt_reply()
        self._view.interrupt_reply(note)
        self._end()

    def _end(self) -> None:
        self._view.set_busy(False)
        self._composer.set_generating(False)
        if not self._closed:
            self.show_continue()
        self.ended.emit()

    @Slot(str)
    def _on_bridge_token_batch(self, text: str) -> None:
        if not self._streaming or self._closed:
            return  # the tail of a reply the person walked away from
        self._view.append_reply(text)
        try:
            self._session.append_reply(text)
        except HerdError as exc:
            logger.warning("could not save the streaming reply: %s", exc.user_message)

    @Slot(object)
    def _on_bridge_reply_finished(self, finished: ev.Finished) -> None:
        if not self._streaming:
            return
        self._streaming = False
        before = self._session.continued
        whole = finished if before is None else continued(before, finished)
        text = whole.text or self._session.reply_text
        try:
            self._session.finish_reply(
                text, ReplyStats.of(whole), expects_tool_result=finished.stop_token == EOM
            )
        except HerdError as exc:
            self._report(exc)
        self._view.finish_reply(whole)
        self._end()

    @Slot(str, str)
    def _on_bridge_reply_failed(self, message: str, hint: str) -> None:
        if not self._streaming:
            return
        self._streaming = False
        self._session.interrupt_reply()
        self._view.fail_reply(message, hint)
        self._end()

    @Slot(object)
    def _on_bridge_loaded(self, _facts: ev.ModelFacts) -> None:
        self.show_continue()

    @Slot(object)
    def _on_bridge_engine_crashed(self, _crash: ev.EngineCrashed) -> None:
        self.stop("interrupted: the engine stopped")
