"""ConversationController: the chat's flow between sidebar, transcript, engine and store.

Every message is stored the moment it exists (:class:`ChatSession`), a streaming reply as it
grows (:class:`~app.ui.chat.reply_stream.ReplyStream`); what was removed (a chat, a reply,
an edited message) comes back from the undo banner. Each chat can have its own sampling
settings (the side panel), and its last reply can be continued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMainWindow

from app.core.chat import attachments
from app.core.chat.budget import OverflowPolicy
from app.core.chat.export import export_name, write_export
from app.core.chat.session import ChatSession, Undo
from app.core.chat.store_schema import DeleteToken
from app.core.errors import HerdError
from app.core.paths import AppPaths
from app.core.settings import SamplingSettings
from app.ui.banners import UndoBanner
from app.ui.bridge import EngineBridge
from app.ui.chat.chat_view import ChatView
from app.ui.chat.composer import Composer
from app.ui.chat.context_meter import ContextMeter
from app.ui.chat.reply_stream import ReplyStream
from app.ui.chat.sampling_panel import SamplingPanel
from app.ui.chat.shown_message import ShownMessage, image_file
from app.ui.chat.sidebar import ConversationSidebar, ask_export_target

logger = logging.getLogger(__name__)


class ConversationController(QObject):
    """Sends, regenerates, continues, edits, deletes and exports conversations."""

    conversation_changed = Signal()  # another chat is open, or its title or prompt changed

    def __init__(
        self,
        session: ChatSession,
        *,
        paths: AppPaths,
        bridge: EngineBridge,
        sidebar: ConversationSidebar,
        chat_view: ChatView,
        composer: Composer,
        meter: ContextMeter,
        undo_banner: UndoBanner,
        sampling_panel: SamplingPanel,
        sampling: Callable[[], SamplingSettings],
        system_prompt: Callable[[], str],
        parent: QMainWindow,
        report: Callable[[HerdError], None],
    ) -> None:
        super().__init__(parent)
        self._report_to = report  # the window's error banner
        self.session = session
        self._paths = paths
        self._bridge = bridge
        self._sidebar = sidebar
        self._view = chat_view
        self._composer = composer
        self._meter = meter
        self._undo_banner = undo_banner
        self._panel = sampling_panel
        self._sampling = sampling  # the defaults: Settings' sampling
        self._system_prompt = system_prompt
        self._window = parent
        self._closed = False
        self._undo: Undo | DeleteToken | None = None
        self._reply = ReplyStream(
            session,
            bridge=bridge,
            chat_view=chat_view,
            composer=composer,
            policy=lambda: meter.policy,
            defaults=sampling,
            report=self._report,
            parent=self,
        )
        self._reply.ended.connect(self._on_reply_ended)
        sidebar.new_requested.connect(self.new_chat)
        sidebar.conversation_selected.connect(self._on_sidebar_conversation_selected)
        sidebar.rename_requested.connect(self._on_sidebar_rename_requested)
        sidebar.delete_requested.connect(self._on_sidebar_delete_requested)
        sidebar.export_requested.connect(self._on_sidebar_export_requested)
        sidebar.search_changed.connect(self._on_sidebar_search_changed)
        chat_view.regenerate_requested.connect(self.regenerate)
        chat_view.continue_requested.connect(self.continue_reply)
        sampling_panel.sampling_changed.connect(self.set_sampling)
        sampling_panel.reset_requested.connect(self._on_sampling_panel_reset_requested)
        chat_view.edit_requested.connect(self._on_chat_view_edit_requested)
        undo_banner.undo_requested.connect(self._on_undo_banner_undo_requested)
        undo_banner.dismissed.connect(self._on_undo_banner_dismissed)
        meter.policy_changed.connect(self._on_meter_policy_changed)

    # -- state -----------------------------------------------------------------------
    @property
    def streaming(self) -> bool:
        """Whether a reply is being written into the open conversation."""
        return self._reply.streaming

    def sampling(self) -> SamplingSettings:
        """What the open chat's next reply is sampled with (its own, else the defaults)."""
        return self._reply.sampling()

    def restore(self) -> None:
        """Show the conversation that was open when Herd closed, and the sidebar."""
        try:
            self.session.restore_last()
        except HerdError as exc:
            logger.warning("could not reopen the last conversation: %s", exc.user_message)
        self._show_open_conversation()

    def close(self) -> None:
        """The window is closing: nothing more is shown or asked (the store closes next)."""
        self._closed = True
        self._reply.close()
        self._undo_banner.withdraw()

    def refresh_sidebar(self) -> None:
        """Re-list the conversations (newest activity first, filtered by the search)."""
        if self._closed:
            return
        try:
            conversations = self.session.store.list_conversations(self._sidebar.query)
        except HerdError as exc:
            self._report(exc)
            return
        self._sidebar.set_conversations(
            conversations, self.session.conversation_id, now=self.session.store.now()
        )

    # -- actions ---------------------------------------------------------------------
    @Slot()
    def new_chat(self) -> None:
        """Start a new, empty conversation."""
        self._reply.stop("stopped: you started a new chat")
        self.session.new()
        self._show_open_conversation()
        self._composer.editor.setFocus()

    def open(self, conversation_id: int) -> None:
        """Show a saved conversation."""
        if conversation_id == self.session.conversation_id:
            return
        self._reply.stop("stopped: you switched chats")
        try:
            self.session.open(conversation_id)
        except HerdError as exc:
            self._report(exc)
        self._show_open_conversation()

    def send(self, text: str, images: tuple[str, ...] = ()) -> bool:
        """Save the person's message, show it and ask the engine for a reply."""
        if self._reply.streaming or self._bridge.loading:
            return False
        try:
            self.session.add_user(text, images, system=self._system_prompt())
        except HerdError as exc:
            self._report(exc)
            return False
        self._view.add_user_message(text, tuple(image_file(self._paths, r) for r in images))
        self._reply.start()
        self.refresh_sidebar()
        self.conversation_changed.emit()
        return True

    def _can_reply(self) -> bool:
        """Whether a new reply can start now (else the person is told why)."""
        if self._reply.streaming or self._bridge.loading:
            return False
        if self._bridge.facts is None:
            self._window.statusBar().showMessage("Load a model first.", 5000)
            return False
        return True

    @Slot()
    def regenerate(self) -> None:
        """Write the last reply again (the old one can be brought back with Undo)."""
        if not self._can_reply():
            return
        try:
            undo = self.session.take_last_reply()
        except HerdError as exc:
            self._report(exc)
            return
        self._show_messages()
        self._offer_undo(undo, "The reply will be written again.")
        self._reply.start()

    def can_continue(self) -> bool:
        """Whether Continue can extend the last reply now (a model loaded, nothing running)."""
        return self._reply.can_continue()

    @Slot()
    def continue_reply(self) -> None:
        """Write more of the last reply, from where it stopped, into the same message."""
        if not self._can_reply():
            return
        problem = self._bridge.continue_problem
        if problem or self.session.continuable() is None:
            say = problem or "There is no reply to continue: the last message is not one."
            self._window.statusBar().showMessage(say, 8000)
            return
        self._reply.start(continue_last=True)

    def edit(self, index: int, text: str) -> None:
        """Replace the ``index``-th message and everything after it with a new reply."""
        if not self._can_reply():
            self._show_messages()  # the bubble shows the saved text again
            return
        try:
            undo = self.session.edit_user_message(index, text)
        except HerdError as exc:
            self._report(exc)
            return
        self._show_messages()
        self._offer_undo(undo, "Message edited; the later messages were replaced.")
        self._reply.start()

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation; the undo banner can bring it back."""
        if conversation_id == self.session.conversation_id:
            self._reply.stop("stopped: the chat was deleted")
        try:
            title = self.session.store.get(conversation_id).title
            token = self.session.delete(conversation_id)
        except HerdError as exc:
            self._report(exc)
            return
        self._offer_undo(token, f"Deleted “{title}”.")
        self._show_open_conversation()

    def export(self, conversation_id: int, fmt: str, target: Path | None = None) -> Path | None:
        """Write a conversation to Markdown (``md``) or JSON; asks where when no target."""
        store = self.session.store
        try:
            title = store.get(conversation_id).title
        except HerdError as exc:
            self._report(exc)
            return None
        target = target or ask_export_target(self._window, export_name(title, fmt))
        if target is None:
            return None
        try:
            write_export(store, conversation_id, fmt, target)
        except HerdError as exc:
            self._report(exc)
            return None
        return target

    def set_system_prompt(self, text: str) -> None:
        """Give the open conversation its own system prompt (from the next reply on)."""
        try:
            self.session.set_system_prompt(text)
        except HerdError as exc:
            self._report(exc)
        self.refresh_sidebar()
        self.conversation_changed.emit()

    @Slot(object)
    def set_sampling(self, sampling: SamplingSettings | None) -> None:
        """Give the open chat its own sampling (None: the defaults again) from its next reply."""
        try:
            self.session.set_sampling(sampling)
        except HerdError as exc:
            self._report(exc)
        self.show_sampling()

    def show_sampling(self) -> None:
        """Show the open chat's sampling in the side panel (the defaults may have changed)."""
        own = self.session.sampling
        self._panel.set_sampling(own or self._sampling(), own=own is not None)

    def clean_up(self) -> None:
        """Forget chats deleted in an earlier run, and images no message names any more."""
        try:
            self.session.store.purge_deleted()
            referenced = self.session.store.image_refs()
        except HerdError as exc:
            logger.warning("could not tidy the chat history: %s", exc.user_message)
            return
        removed = attachments.delete_unreferenced(self._paths, referenced)
        if removed:
            logger.info("removed %d images no message uses", len(removed))

    def undo(self) -> None:
        """Bring back what the last delete, regenerate or edit removed."""
        undo, self._undo = self._undo, None
        self._undo_banner.withdraw()
        if undo is None:
            return
        if isinstance(undo, DeleteToken):
            if self.session.undo_delete(undo):
                self.session.open(undo.conversation_id)
        else:
            self._reply.stop("stopped: undone")  # the reply the undo takes back
            self.session.undo(undo)
        self._show_open_conversation()

    # -- showing ---------------------------------------------------------------------
    def _show_open_conversation(self) -> None:
        self._show_messages()
        conversation = self.session.conversation
        policy = conversation.overflow_policy if conversation else OverflowPolicy.STOP
        box = self._meter.policy_box
        box.blockSignals(True)
        box.setCurrentIndex(max(0, box.findData(policy)))
        box.blockSignals(False)
        self.show_sampling()
        self.refresh_sidebar()
        self.conversation_changed.emit()

    def _show_messages(self) -> None:
        try:
            messages = self.session.messages()
        except HerdError as exc:
            self._report(exc)
            messages = []
        self._view.load_messages([ShownMessage.from_stored(m, self._paths) for m in messages])
        self._reply.show_continue(messages)

    def _offer_undo(self, undo: Undo | DeleteToken, text: str) -> None:
        self._undo = undo
        self._undo_banner.offer(text)

    def _report(self, exc: HerdError) -> None:
        logger.warning("%s (%s)", exc.user_message, exc.hint)
        if not self._closed:
            self._report_to(exc)

    # -- slots -----------------------------------------------------------------------
    @Slot()
    def _on_reply_ended(self) -> None:
        self.refresh_sidebar()

    @Slot()
    def _on_sampling_panel_reset_requested(self) -> None:
        self.set_sampling(None)

    @Slot(int)
    def _on_sidebar_conversation_selected(self, conversation_id: int) -> None:
        self.open(conversation_id)

    @Slot(int, str)
    def _on_sidebar_rename_requested(self, conversation_id: int, title: str) -> None:
        try:
            self.session.store.rename(conversation_id, title)
            self.session.refresh()
        except HerdError as exc:
            self._report(exc)
        self.refresh_sidebar()
        self.conversation_changed.emit()

    @Slot(int)
    def _on_sidebar_delete_requested(self, conversation_id: int) -> None:
        self.delete(conversation_id)

    @Slot(int, str)
    def _on_sidebar_export_requested(self, conversation_id: int, fmt: str) -> None:
        self.export(conversation_id, fmt)

    @Slot(str)
    def _on_sidebar_search_changed(self, _query: str) -> None:
        self.refresh_sidebar()

    @Slot(int, str)
    def _on_chat_view_edit_requested(self, index: int, text: str) -> None:
        self.edit(index, text)

    @Slot()
    def _on_undo_banner_undo_requested(self) -> None:
        self.undo()

    @Slot()
    def _on_undo_banner_dismissed(self) -> None:
        undo, self._undo = self._undo, None
        if isinstance(undo, DeleteToken):
            self.clean_up()  # the chat is gone for good: so are images only it used

    @Slot(object)
    def _on_meter_policy_changed(self, policy: OverflowPolicy) -> None:
        conversation_id = self.session.conversation_id
        if conversation_id is None:
            return
        try:
            self.session.store.set_overflow_policy(conversation_id, policy)
        except HerdError as exc:
            self._report(exc)
