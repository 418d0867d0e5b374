"""Strips above the conversation: an error, engine crash, chat-template notice, undo."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core import events as ev


def strip_icon(strip: QWidget, kind: QStyle.StandardPixmap) -> QLabel:
    """A strip's small standard icon (warning, error, information) as a label."""
    icon = QLabel(strip)
    size = strip.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
    icon.setPixmap(strip.style().standardIcon(kind).pixmap(size, size))
    return icon


class _ReportStrip(QFrame):
    """A strip that reports something with Copy (for a bug report) and Open log buttons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""  # what Copy puts on the clipboard
        self._log_path = ""

    def _add_report_buttons(self, row: QHBoxLayout, copy_tip: str, log_tip: str) -> None:
        self.copy_button = QToolButton(self)
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip(copy_tip)
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        row.addWidget(self.copy_button)
        self.log_button = QToolButton(self)
        self.log_button.setText("Open log")
        self.log_button.setToolTip(log_tip)
        self.log_button.clicked.connect(self._on_log_button_clicked)
        row.addWidget(self.log_button)

    def _set_report(self, text: str, log_path: str) -> None:
        self._text = text
        self._log_path = log_path
        self.log_button.setVisible(bool(log_path) and Path(log_path).exists())

    @property
    def text(self) -> str:
        """What Copy puts on the clipboard."""
        return self._text

    @Slot()
    def _on_copy_button_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self._text)

    @Slot()
    def _on_log_button_clicked(self) -> None:
        if self._log_path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self._log_path))


class CrashBanner(_ReportStrip):
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
        icon = strip_icon(self, QStyle.StandardPixmap.SP_MessageBoxWarning)
        row.addWidget(icon)
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        row.addWidget(self.message_label, 1)
        self.details_button = QToolButton(self)
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.toggled.connect(self._on_details_button_toggled)
        row.addWidget(self.details_button)
        self._add_report_buttons(
            row, "Copy what happened and the end of the engine's log", "Open the engine's whole log"
        )
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

    def show_crash(self, crash: ev.EngineCrashed, log_path: str = "") -> None:
        """Show what happened: the message, and the end of the log under Details."""
        self.message_label.setText(crash.message)
        tail = "\n".join(crash.log_tail) or "(the engine wrote nothing to its log)"
        self.log_view.setPlainText(f"exit code: {crash.exit_code}\n{tail}")
        where = f"\nLog: {log_path}" if log_path else ""
        self._set_report(f"{crash.message}{where}\n\n{self.log_view.toPlainText()}", log_path)
        self.details_button.setChecked(False)
        self.show()

    @Slot(bool)
    def _on_details_button_toggled(self, shown: bool) -> None:
        self.log_view.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Details")
        if shown:  # the crash is at the log's end: show that, not its first lines
            bar = self.log_view.verticalScrollBar()
            bar.setValue(bar.maximum())


class ErrorBanner(_ReportStrip):
    """The one place the window shows an error: what went wrong, what to do, and its log.

    Every HerdError and failed job that is not part of a reply's own bubble ends here, with
    Copy (the message, the hint and the log's path, for a bug report) and Open log.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet(
            "#errorBanner { background: rgba(220, 53, 69, 28);"
            " border-bottom: 1px solid rgba(220, 53, 69, 120); }"
        )
        row = QHBoxLayout(self)
        row.setContentsMargins(16, 8, 16, 8)
        icon = strip_icon(self, QStyle.StandardPixmap.SP_MessageBoxCritical)
        row.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.message_label, 1)
        self._add_report_buttons(
            row, "Copy the message, what to do and the log's path", "Open the log that says more"
        )
        self.dismiss_button = QToolButton(self)
        self.dismiss_button.setText("Dismiss")
        self.dismiss_button.clicked.connect(self.hide)
        row.addWidget(self.dismiss_button)
        self.hide()

    def show_error(self, message: str, hint: str = "", log_path: str = "") -> None:
        """Show an error (replacing the one shown)."""
        self.message_label.setText(f"{message}\n{hint}".strip())
        where = f"\nLog: {log_path}" if log_path else ""
        self._set_report(f"{message}\n{hint}".strip() + where, log_path)
        self.show()


class TemplateNotice(QFrame):
    """Says that a Llama 4 GGUF's own chat template differs from the official format.

    The person chooses which to use; the choice reloads the model with it.
    """

    template_choice_requested = Signal(str)  # a TemplateChoice value

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("templateNotice")
        self.setStyleSheet(
            "#templateNotice { background: rgba(240, 173, 78, 45);"
            " border-bottom: 1px solid rgba(240, 173, 78, 160); }"
        )
        row = QHBoxLayout(self)
        row.setContentsMargins(16, 8, 16, 8)
        icon = strip_icon(self, QStyle.StandardPixmap.SP_MessageBoxInformation)
        row.addWidget(icon)
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(
            self.message_label.textInteractionFlags() | Qt.TextInteractionFlag.TextSelectableByMouse
        )
        row.addWidget(self.message_label, 1)
        self.switch_button = QPushButton(self)
        self.switch_button.clicked.connect(self._on_switch_button_clicked)
        row.addWidget(self.switch_button)
        self.dismiss_button = QToolButton(self)
        self.dismiss_button.setText("Dismiss")
        self.dismiss_button.clicked.connect(self.hide)
        row.addWidget(self.dismiss_button)
        self._target = ""
        self.hide()

    def show_warnings(self, warnings: tuple[str, ...], using_model_template: bool) -> None:
        """Show the loaded model's format warnings (hidden when there are none)."""
        if not warnings:
            self.hide()
            return
        self.message_label.setText("\n".join(warnings))
        if using_model_template:
            self.switch_button.setText("Use the official format")
            self._target = "herd"
        else:
            self.switch_button.setText("Use the model's template")
            self._target = "model"
        self.show()

    @Slot()
    def _on_switch_button_clicked(self) -> None:
        self.hide()
        self.template_choice_requested.emit(self._target)


UNDO_SHOWN_MS = 12_000


class UndoBanner(QFrame):
    """A quiet strip saying what was just removed, with Undo; it hides by itself."""

    undo_requested = Signal()
    dismissed = Signal()  # it timed out or was closed: the change stands

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("undoBanner")
        self.setStyleSheet(
            "#undoBanner { background: palette(alternate-base);"
            " border-bottom: 1px solid palette(mid); }"
        )
        row = QHBoxLayout(self)
        row.setContentsMargins(16, 6, 16, 6)
        self.message_label = QLabel(self)
        row.addWidget(self.message_label, 1)
        self.undo_button = QPushButton("Undo", self)
        self.undo_button.setToolTip("Bring it back")
        self.undo_button.clicked.connect(self.undo_requested)
        row.addWidget(self.undo_button)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self._on_close_button_clicked)
        row.addWidget(self.close_button)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(UNDO_SHOWN_MS)
        self._timer.timeout.connect(self._on_close_button_clicked)
        self.hide()

    def offer(self, text: str) -> None:
        """Say what happened and offer Undo for a few seconds."""
        self.message_label.setText(text)
        self.show()
        self._timer.start()

    def withdraw(self) -> None:
        """Hide without saying the change stands (Undo was used)."""
        self._timer.stop()
        self.hide()

    @Slot()
    def _on_close_button_clicked(self) -> None:
        self._timer.stop()
        if self.isVisible():
            self.hide()
            self.dismissed.emit()
