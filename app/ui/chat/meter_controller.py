"""MeterController: the live token meter (the status bar's context meter and the draft count).

It counts the conversation plus the draft once typing pauses (in the background, through
the bridge), shows the prompt as fitted when a reply starts, follows the reply's tokens,
and settles on the reply's final count.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Slot

from app.core import events as ev
from app.core.chat.budget import Fitted
from app.core.chat.messages import ChatMessage, Role
from app.ui.bridge import EngineBridge
from app.ui.chat.composer import Composer
from app.ui.chat.context_meter import ContextMeter
from app.ui.chat.conversations import ConversationController

DRAFT_COUNT_DELAY_MS = 250  # count the draft's tokens once typing pauses


class MeterController(QObject):
    """Keeps the context meter and the composer's draft count up to date."""

    def __init__(
        self,
        parent: QObject,
        *,
        bridge: EngineBridge,
        conversations: ConversationController,
        composer: Composer,
        meter: ContextMeter,
        system_prompt: Callable[[], str],
        say: Callable[[str, int], None],
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._conversations = conversations
        self._composer = composer
        self._meter = meter
        self._system_prompt = system_prompt
        self._say = say  # a passing line in the status bar (text, milliseconds)
        self._prompt_tokens = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DRAFT_COUNT_DELAY_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        composer.editor.textChanged.connect(self._timer.start)
        if composer.image_panel is not None:
            composer.image_panel.images_changed.connect(self._timer.start)
        bridge.prompt_fitted.connect(self._on_bridge_prompt_fitted)
        bridge.tokens_streamed.connect(self._on_bridge_tokens_streamed)
        bridge.draft_counted.connect(self._on_bridge_draft_counted)
        bridge.reply_finished.connect(self._on_bridge_reply_finished)

    def recount(self) -> None:
        """Count the draft again soon (a model was loaded, a chat was opened)."""
        self._timer.start()

    def stop(self) -> None:
        """No more counts (the window is closing)."""
        self._timer.stop()

    @Slot()
    def _on_timer_timeout(self) -> None:
        session = self._conversations.session
        messages, _ = session.prompt()
        if session.conversation is None and self._system_prompt():
            messages = [ChatMessage(Role.SYSTEM, self._system_prompt())]  # what it starts with
        text, images = self._composer.text.strip(), self._composer.images
        draft = ChatMessage(Role.USER, text, images) if text or images else None
        if messages or draft is not None:
            self._bridge.count_draft(messages, draft)
        elif self._bridge.facts is not None:
            self._meter.set_usage(0, self._bridge.facts.n_ctx)

    @Slot(object)
    def _on_bridge_prompt_fitted(self, fitted: Fitted) -> None:
        self._prompt_tokens = fitted.prompt_tokens
        self._meter.set_usage(fitted.prompt_tokens, fitted.n_ctx)
        if fitted.dropped:
            self._say(
                f"{len(fitted.dropped)} older messages were left out so the chat fits the context.",
                8000,
            )

    @Slot(int)
    def _on_bridge_tokens_streamed(self, n_tokens: int) -> None:
        self._meter.set_usage(self._prompt_tokens + n_tokens, self._meter.total)

    @Slot(int, int)
    def _on_bridge_draft_counted(self, n_tokens: int, n_draft: int) -> None:
        if self._bridge.facts is not None and not self._bridge.busy:
            self._meter.set_usage(n_tokens, self._bridge.facts.n_ctx)
            self._composer.set_draft_tokens(n_draft)

    @Slot(object)
    def _on_bridge_reply_finished(self, finished: ev.Finished) -> None:
        self._meter.set_usage(finished.prompt_tokens + finished.generated_tokens, self._meter.total)
