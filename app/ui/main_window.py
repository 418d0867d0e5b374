"""MainWindow: model bar, crash banner, conversation, composer and status bar."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QCloseEvent, QFont, QFontDatabase
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core import events as ev
from app.core.chat.messages import ChatMessage, Role
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.ui.bridge import EngineBridge
from app.ui.chat_view import ChatView
from app.ui.composer import Composer

logger = logging.getLogger(__name__)

DEFAULT_SIZE = (1000, 720)
_MUTED = "color: palette(placeholder-text);"


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


class ModelBar(QFrame):
    """The strip at the top: which model is loaded, and Load/Unload/Cancel."""

    load_requested = Signal(str)
    unload_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, start_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelBar")
        self.setStyleSheet("#modelBar { border-bottom: 1px solid palette(mid); }")
        self._start_dir = start_dir
        row = QHBoxLayout(self)
        row.setContentsMargins(16, 10, 16, 10)
        row.setSpacing(10)
        text = QVBoxLayout()
        text.setSpacing(2)
        self.name_label = QLabel(self)
        font = QFont(self.name_label.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.name_label.setFont(font)
        self.details_label = QLabel(self)
        self.details_label.setWordWrap(True)
        text.addWidget(self.name_label)
        text.addWidget(self.details_label)
        row.addLayout(text, 1)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(False)
        row.addWidget(self.progress)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_requested)
        row.addWidget(self.cancel_button)
        self.load_button = QPushButton("Load…", self)
        self.load_button.setToolTip("Open a .gguf model file")
        self.load_button.clicked.connect(self._on_load_button_clicked)
        row.addWidget(self.load_button)
        self.unload_button = QPushButton("Unload", self)
        self.unload_button.setToolTip("Free the model's memory")
        self.unload_button.clicked.connect(self.unload_requested)
        row.addWidget(self.unload_button)
        self.show_none()

    def show_none(self, details: str = "Load a .gguf model file to start chatting.") -> None:
        """No model is loaded."""
        self._set("No model loaded", details, loading=False, loaded=False)

    def show_loading(self, path: Path) -> None:
        """A load has started."""
        self._set(path.name, "Loading…", loading=True, loaded=False)
        self.progress.setValue(0)

    def show_progress(self, fraction: float, message: str) -> None:
        """Loading goes on."""
        self.progress.setValue(int(fraction * 1000))
        self.details_label.setText(f"{message or 'Loading'}… {fraction:.0%}")

    def show_model(self, facts: ev.ModelFacts) -> None:
        """A model is loaded."""
        name = facts.name or Path(facts.path).stem
        context = f"context {facts.n_ctx:,} tokens"
        if facts.n_ctx_train:
            context = f"context {facts.n_ctx:,} of {facts.n_ctx_train:,} tokens"
        parts = [Path(facts.path).name, facts.description, context, _size(facts.size_bytes)]
        details = "  ·  ".join(p for p in parts if p)
        if facts.warnings:
            details += "\n⚠ " + " ".join(facts.warnings)
        self._set(name, details, loading=False, loaded=True)
        self.details_label.setToolTip(facts.path)

    def show_error(self, path: Path | None, message: str, hint: str) -> None:
        """A load failed."""
        title = f"Could not load {path.name}" if path else "Could not load the model"
        self._set(title, f"{message} {hint}".strip(), loading=False, loaded=False)
        self.details_label.setStyleSheet("color: #d9534f;")

    def _set(self, name: str, details: str, *, loading: bool, loaded: bool) -> None:
        self.name_label.setText(name)
        self.details_label.setText(details)
        self.details_label.setStyleSheet(_MUTED)
        self.details_label.setToolTip("")
        self.progress.setVisible(loading)
        self.cancel_button.setVisible(loading)
        self.load_button.setEnabled(not loading)
        self.unload_button.setVisible(loaded)

    @Slot()
    def _on_load_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a model", str(self._start_dir), "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self._start_dir = Path(path).parent
            self.load_requested.emit(path)


class CrashBanner(QFrame):
    """A strip above the conversation saying the engine stopped, with Details and Reload."""

    reload_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("crashBanner")
        self.setStyleSheet(
            "#crashBanner { background: rgba(220, 53, 69, 40);"
            " border-bottom: 1px solid rgba(220, 53, 69, 140); }"
        )
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 8, 16, 8)
        row = QHBoxLayout()
        icon = QLabel(self)
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        warn = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        icon.setPixmap(warn.pixmap(size, size))
        row.addWidget(icon)
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        row.addWidget(self.message_label, 1)
        self.details_button = QToolButton(self)
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.toggled.connect(self._on_details_button_toggled)
        row.addWidget(self.details_button)
        self.reload_button = QPushButton("Reload", self)
        self.reload_button.setToolTip("Restart the engine and load the model again")
        self.reload_button.clicked.connect(self.reload_requested)
        row.addWidget(self.reload_button)
        outer.addLayout(row)
        self.log_view = QPlainTextEdit(self)
        self.log_view.setReadOnly(True)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log_view.setMaximumHeight(150)
        self.log_view.hide()
        outer.addWidget(self.log_view)
        self.hide()

    def show_crash(self, crash: ev.EngineCrashed) -> None:
        """Show what happened."""
        self.message_label.setText(crash.message)
        tail = "\n".join(crash.log_tail) or "(the engine wrote nothing to its log)"
        self.log_view.setPlainText(f"exit code: {crash.exit_code}\n{tail}")
        self.details_button.setChecked(False)
        self.show()

    @Slot(bool)
    def _on_details_button_toggled(self, shown: bool) -> None:
        self.log_view.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Details")


class MainWindow(QMainWindow):
    """Herd's window: one conversation with the loaded model."""

    def __init__(
        self,
        paths: AppPaths,
        settings: Settings,
        *,
        bridge: EngineBridge | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._history: list[ChatMessage] = []
        self._model_path: Path | None = None
        self.setWindowTitle("Herd")
        self.resize(*DEFAULT_SIZE)
        self.bridge = bridge if bridge is not None else EngineBridge(paths, self)

        last = Path(settings.last_model).parent if settings.last_model else paths.models
        self.model_bar = ModelBar(last, self)
        self.banner = CrashBanner(self)
        self.chat_view = ChatView(self)
        self.composer = Composer(self)
        central = QWidget(self)
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        for widget in (self.model_bar, self.banner, self.chat_view, self.composer):
            column.addWidget(widget)
        column.setStretchFactor(self.chat_view, 1)
        self.setCentralWidget(central)

        self.model_status = QLabel(self)
        self.reply_status = QLabel(self)
        self.statusBar().setStyleSheet(
            "QStatusBar::item { border: none; } QStatusBar QLabel { padding: 0 8px; }"
        )
        self.statusBar().addWidget(self.model_status, 1)
        self.statusBar().addPermanentWidget(self.reply_status)
        self._show_no_model()

        self.model_bar.load_requested.connect(self._on_model_bar_load_requested)
        self.model_bar.unload_requested.connect(self._on_model_bar_unload_requested)
        self.model_bar.cancel_requested.connect(self._on_model_bar_cancel_requested)
        self.banner.reload_requested.connect(self._on_banner_reload_requested)
        self.composer.send_requested.connect(self._on_composer_send_requested)
        self.composer.stop_requested.connect(self._on_composer_stop_requested)
        b = self.bridge
        b.load_progress.connect(self._on_bridge_load_progress)
        b.loaded.connect(self._on_bridge_loaded)
        b.load_failed.connect(self._on_bridge_load_failed)
        b.load_cancelled.connect(self._on_bridge_load_cancelled)
        b.unloaded.connect(self._on_bridge_unloaded)
        b.token_batch.connect(self._on_bridge_token_batch)
        b.reply_finished.connect(self._on_bridge_reply_finished)
        b.reply_failed.connect(self._on_bridge_reply_failed)
        b.engine_crashed.connect(self._on_bridge_engine_crashed)
        self.composer.editor.setFocus()

    @property
    def settings(self) -> Settings:
        """The settings, with the last loaded model remembered."""
        return self._settings

    def apply_settings(self, settings: Settings) -> None:
        """Use new settings from the next load or reply on."""
        self._settings = settings

    @property
    def history(self) -> list[ChatMessage]:
        """The conversation as the model sees it."""
        return list(self._history)

    def load_model(self, path: str | Path) -> None:
        """Load a model file (stopping a reply that is being written)."""
        self._model_path = Path(path)
        self.banner.hide()
        self.model_bar.show_loading(self._model_path)
        self.composer.set_ready(False, loading=True)
        self.model_status.setText(f"Loading {self._model_path.name}…")
        self.bridge.load(self._model_path, self._settings.load)

    def send_message(self, text: str) -> None:
        """Send ``text`` as the person's next message."""
        self._history.append(ChatMessage(Role.USER, text))
        self.chat_view.add_user_message(text)
        self.chat_view.begin_reply()
        self.composer.set_generating(True)
        self.bridge.send(self._history, self._settings.sampling)

    def shutdown(self) -> None:
        """Stop every job and the engine (joined). Safe to call twice."""
        self.bridge.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Closing the window ends every job and the engine."""
        self.shutdown()
        super().closeEvent(event)

    # -- from the widgets ------------------------------------------------------------
    @Slot(str)
    def _on_model_bar_load_requested(self, path: str) -> None:
        self.load_model(path)

    @Slot()
    def _on_model_bar_unload_requested(self) -> None:
        self.bridge.unload()

    @Slot()
    def _on_model_bar_cancel_requested(self) -> None:
        self.bridge.cancel_load()

    @Slot()
    def _on_banner_reload_requested(self) -> None:
        if self._model_path is not None:
            self.load_model(self._model_path)

    @Slot(str)
    def _on_composer_send_requested(self, text: str) -> None:
        self.send_message(text)

    @Slot()
    def _on_composer_stop_requested(self) -> None:
        self.bridge.stop()

    # -- from the engine -------------------------------------------------------------
    @Slot(float, str)
    def _on_bridge_load_progress(self, fraction: float, message: str) -> None:
        self.model_bar.show_progress(fraction, message)

    @Slot(object)
    def _on_bridge_loaded(self, facts: ev.ModelFacts) -> None:
        self.model_bar.show_model(facts)
        self.composer.set_ready(True)
        name = facts.name or Path(facts.path).stem
        self.setWindowTitle(f"{name} – Herd")
        self.model_status.setText(f"{name} loaded in {facts.load_seconds:.1f} s")
        self.chat_view.set_empty_hint("Type a message below to start.")
        self._settings = dataclasses.replace(self._settings, last_model=facts.path)

    @Slot(str, str)
    def _on_bridge_load_failed(self, message: str, hint: str) -> None:
        self.model_bar.show_error(self._model_path, message, hint)
        self._show_no_model(status=message)

    @Slot()
    def _on_bridge_load_cancelled(self) -> None:
        self.model_bar.show_none("Loading was cancelled.")
        self._show_no_model()

    @Slot()
    def _on_bridge_unloaded(self) -> None:
        self.model_bar.show_none()
        self._show_no_model()

    @Slot(str)
    def _on_bridge_token_batch(self, text: str) -> None:
        self.chat_view.append_reply(text)

    @Slot(object)
    def _on_bridge_reply_finished(self, finished: ev.Finished) -> None:
        self.chat_view.finish_reply(finished)
        text = finished.text or self.chat_view.reply_text()
        self._history.append(ChatMessage(Role.ASSISTANT, text))
        self.composer.set_generating(False)
        self.reply_status.setText(
            f"last reply: {finished.generated_tokens} tokens  ·  "
            f"{finished.decode_tok_s:.1f} tok/s  ·  prompt {finished.prompt_tokens} tokens "
            f"at {finished.prompt_tok_s:.0f} tok/s"
        )

    @Slot(str, str)
    def _on_bridge_reply_failed(self, message: str, hint: str) -> None:
        self.chat_view.fail_reply(message, hint)
        self.composer.set_generating(False)

    @Slot(object)
    def _on_bridge_engine_crashed(self, crash: ev.EngineCrashed) -> None:
        logger.error("engine crashed (exit code %s)", crash.exit_code)
        if self.chat_view.replying:
            partial = self.chat_view.reply_text()
            self.chat_view.interrupt_reply("interrupted: the engine stopped")
            if partial:
                # the model sees what the person sees
                self._history.append(ChatMessage(Role.ASSISTANT, partial))
        self.composer.set_generating(False)
        self.banner.show_crash(crash)
        self.model_bar.show_none("The engine stopped. Reload to continue.")
        self._show_no_model(status="Engine stopped")

    def _show_no_model(self, status: str = "No model loaded") -> None:
        self.composer.set_ready(False)
        self.setWindowTitle("Herd")
        self.model_status.setText(status)
        self.chat_view.set_empty_hint("Load a model with <b>Load…</b> at the top to begin.")
