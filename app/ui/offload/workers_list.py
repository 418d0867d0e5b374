"""The "Workers" list of Offload & Context: other machines' devices to plan across.

Each entry is a ``herd worker`` (HOST:PORT). **Ask** asks them, off the GUI thread, what
they serve and how fast the link is (:func:`app.core.hardware.workers.ask_workers`), lists
the answers, and hands the workers that answered to the panel, which re-plans with them.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.hardware.workers import Worker, WorkerError, ask_workers, parse_endpoints
from app.core.jobs import CancelToken
from app.core.units import size_text
from app.ui.worker import JobEnded, JobRunner

Answer = tuple[tuple[Worker, ...], tuple[str, ...]]


class WorkersList(QGroupBox):
    """Worker addresses, what each one answered, and the workers to plan with."""

    workers_changed = Signal(object)  # tuple[Worker, ...]: the ones that answered

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Workers (other machines, `herd worker`)", parent)
        self._runner = JobRunner(self, name="workers")
        self._runner.delivered.connect(self._on_runner_delivered)
        self.workers: tuple[Worker, ...] = ()
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("HOST:PORT, HOST:PORT … (trusted network only)")
        self.ask_button = QPushButton("Ask", self)
        self.ask_button.clicked.connect(self._on_ask_button_clicked)
        self.edit.returnPressed.connect(self._on_ask_button_clicked)
        self.answers = QLabel(self)
        self.answers.setWordWrap(True)
        self.answers.hide()  # the panel keeps its height until workers are asked
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(self.ask_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.answers)

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The addresses typed (those that parse)."""
        try:
            return parse_endpoints(self.edit.text())
        except WorkerError:
            return ()

    def set_endpoints(self, endpoints: Sequence[str]) -> None:
        """Show ``endpoints`` and ask them."""
        self.edit.setText(", ".join(endpoints))
        if endpoints:
            self._on_ask_button_clicked()

    def shutdown(self) -> None:
        """Stop asking (the dialog closes)."""
        self._runner.shutdown()

    @Slot()
    def _on_ask_button_clicked(self) -> None:
        try:
            endpoints = parse_endpoints(self.edit.text())
        except WorkerError as exc:
            self.answers.setText(html.escape(exc.one_line()))
            self.answers.show()
            return
        if not endpoints:
            self._show(((), ()))
            return
        self.ask_button.setEnabled(False)
        self.answers.setText("Asking…")
        self.answers.show()

        def job(cancel: CancelToken) -> Iterator[object]:
            yield ask_workers(endpoints)

        self._runner.start(job)

    @Slot(int, object)
    def _on_runner_delivered(self, _job: int, event: object) -> None:
        if isinstance(event, JobEnded):
            self.ask_button.setEnabled(True)
        elif isinstance(event, tuple):
            self._show(event)

    def _show(self, answer: Answer) -> None:
        workers, missing = answer
        lines = [
            f"<b>{html.escape(w.endpoint)}</b>: "
            + "; ".join(
                f"{html.escape(d.name)} {html.escape(d.description)}, "
                f"{size_text(d.offer_bytes or d.free_bytes)} offered"
                for d in w.devices
            )
            + f" · {w.rtt_s * 1000:.2f} ms, {w.bytes_per_s / 1e6:,.0f} MB/s"
            for w in workers
        ]
        lines += [html.escape(m) for m in missing]
        self.answers.setText("<br>".join(lines))
        self.answers.setVisible(bool(lines))
        self.workers = workers
        self.workers_changed.emit(workers)
