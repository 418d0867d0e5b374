"""The Settings dialog's "Local Server" page: the switch, the address, the port and the key."""

from __future__ import annotations

import dataclasses
import html
import secrets

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.settings import SERVER_HOST, Settings
from app.ui.settings.preset_editor import hint_label

NEEDS_KEY = (
    "Listening on {host} lets other computers reach the model: set an API key first "
    "(or listen on 127.0.0.1, this computer only)."
)


def server_problem(host: str, api_key: str) -> str:
    """Why the server may not listen like this ("" when it may): herd serve's own rule."""
    from app.server.listen import is_loopback  # uvicorn is loaded only when needed

    if not host.strip():
        return "Enter the address to listen on (127.0.0.1: this computer only)."
    if not is_loopback(host.strip()) and not api_key.strip():
        return NEEDS_KEY.format(host=host.strip())
    return ""


class ServerPage(QWidget):
    """Serve the window's model over a local OpenAI-compatible API."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """Make the controls (call :meth:`set_values` to fill them)."""
        super().__init__(parent)
        self.enabled_check = QCheckBox("Serve the loaded model on a local OpenAI-compatible API")
        self.host_edit = QLineEdit()
        self.host_edit.setPlaceholderText(SERVER_HOST)
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65535)
        self.port_spin.setSpecialValueText("any free port")
        self.port_spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("none (only allowed on 127.0.0.1)")
        self.show_key_button = QPushButton("Show")
        self.show_key_button.setCheckable(True)
        self.show_key_button.toggled.connect(self._on_show_key_button_toggled)
        self.new_key_button = QPushButton("New key")
        self.new_key_button.setToolTip("Make a random key (clients send it as a Bearer token)")
        self.new_key_button.clicked.connect(self._on_new_key_button_clicked)
        key_row = QHBoxLayout()
        key_row.setContentsMargins(0, 0, 0, 0)
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.show_key_button)
        key_row.addWidget(self.new_key_button)
        form = QFormLayout()
        form.setVerticalSpacing(10)
        form.addRow("Address:", self.host_edit)
        form.addRow("Port:", self.port_spin)
        form.addRow("API key:", key_row)
        box = QGroupBox("Local server")
        inner = QVBoxLayout(box)
        inner.addWidget(self.enabled_check)
        inner.addLayout(form)
        inner.addWidget(
            hint_label(
                "Programs that speak OpenAI's API (editors, scripts, other chat apps) can use "
                "the model loaded here, at the address below. Their requests and your chats "
                "take turns: one reply at a time. 127.0.0.1 keeps it to this computer; any "
                "other address needs an API key."
            )
        )
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #d9534f")
        self.problem_label.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addWidget(self.status_label)
        layout.addWidget(self.problem_label)
        layout.addStretch(1)
        for edit in (self.host_edit, self.key_edit):
            edit.textChanged.connect(self._on_field_changed)
        self.enabled_check.toggled.connect(self._on_field_changed)

    def set_values(self, settings: Settings) -> None:
        """Show the server's settings."""
        self.enabled_check.setChecked(settings.server_enabled)
        self.host_edit.setText(settings.server_host)
        self.port_spin.setValue(settings.server_port)
        self.key_edit.setText(settings.server_api_key)
        self._on_field_changed()

    def applied_to(self, settings: Settings) -> Settings:
        """``settings`` with the server's settings as shown."""
        return dataclasses.replace(
            settings,
            server_enabled=self.enabled_check.isChecked(),
            server_host=self.host_edit.text().strip() or SERVER_HOST,
            server_port=self.port_spin.value(),
            server_api_key=self.key_edit.text().strip(),
        )

    def problem(self) -> str:
        """Why these settings cannot be used ("" when they can; off is always fine)."""
        if not self.enabled_check.isChecked():
            return ""
        return server_problem(self.host_edit.text() or SERVER_HOST, self.key_edit.text())

    def set_status(self, text: str) -> None:
        """Say what the server is doing now (on, at which address; or why it is off)."""
        self.status_label.setText(f"<b>Now:</b> {html.escape(text)}")

    @Slot()
    def _on_field_changed(self) -> None:
        problem = self.problem()
        self.problem_label.setText(problem)
        self.problem_label.setVisible(bool(problem))

    @Slot(bool)
    def _on_show_key_button_toggled(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.key_edit.setEchoMode(mode)
        self.show_key_button.setText("Hide" if shown else "Show")

    @Slot()
    def _on_new_key_button_clicked(self) -> None:
        self.key_edit.setText(f"herd-{secrets.token_urlsafe(24)}")
