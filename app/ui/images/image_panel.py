"""ImagePanel: the images attached to the message being written, as a strip of thumbnails.

Images arrive from the "Attach image" dialog, from drops of image files and from the
clipboard. Each is shown at once as a placeholder and checked with
:func:`app.core.vision.check_image` on a worker thread (:mod:`app.ui.images.image_checker`), so a
drop of large photos never freezes the window; a refused one is reported through
:attr:`ImagePanel.image_rejected` and the draft is left as it was. The panel is
self-contained: the composer places it, listens to its signals, keeps Send off while
:attr:`ImagePanel.busy` and reads :attr:`ImagePanel.images` when the message is sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QEventLoop,
    QIODevice,
    QMimeData,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core import vision
from app.core.chat import attachments
from app.core.errors import HerdError
from app.core.paths import AppPaths
from app.ui.images.image_checker import CheckResult, ImageChecker
from app.ui.images.image_thumb import THUMB, ImageThumb

__all__ = ["MAX_IMAGES", "THUMB", "ImagePanel", "ImageThumb", "image_paths_from_mime"]

MAX_IMAGES = 10  # Llama 4 was trained with up to about 8-10 images per message


def image_paths_from_mime(mime: QMimeData) -> list[str]:
    """The local files a drag or a clipboard carries (any file: checking comes later)."""
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]


class ImagePanel(QFrame):
    """The images attached to the draft: add, show, remove; refuse bad ones with a reason."""

    images_changed = Signal(list)  # the accepted (checked) paths, in order
    image_rejected = Signal(str, str)  # (message, hint) for a refused image
    busy_changed = Signal(bool)  # whether some images are still being checked
    checks_finished = Signal()  # the last pending check is done (or was dropped)
    # The thumbnails' scroll area; the name hides QWidget.scroll(dx, dy), never called here.
    scroll: QScrollArea  # type: ignore[assignment]

    def __init__(self, paths: AppPaths, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imagePanel")
        self.setAcceptDrops(True)
        self._paths = paths
        self._order: list[str] = []  # every image shown, pending or accepted, as added
        self._jobs: dict[str, int] = {}  # pending image -> its check's job id
        self._thumbs: dict[str, ImageThumb] = {}
        self._closed = False
        # parentless: a QWidget deletes its children before it emits destroyed
        self._checker = ImageChecker()
        self._checker.checked.connect(self._on_checker_checked)
        self.destroyed.connect(self._checker.shutdown)
        self._enabled = True
        self._reason = ""
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        # the composer puts this button beside the message box; the panel itself shows only
        # while images are attached (no empty strip above the box)
        self.attach_button = QToolButton(self)
        self.attach_button.setObjectName("attachImageButton")
        self.attach_button.setText("+")
        self.attach_button.setAccessibleName("Attach images")
        font = self.attach_button.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.attach_button.setFont(font)
        self.attach_button.setAutoRaise(True)
        self.attach_button.clicked.connect(self._on_attach_button_clicked)
        self.strip = QWidget(self)
        self.strip.setObjectName("imageStrip")
        self._strip_layout = QHBoxLayout(self.strip)
        self._strip_layout.setContentsMargins(0, 0, 0, 0)
        self._strip_layout.setSpacing(6)
        self._strip_layout.addStretch(1)
        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("imageScroll")
        self.scroll.setWidget(self.strip)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        bar = self.scroll.horizontalScrollBar().sizeHint().height()
        self.scroll.setFixedHeight(THUMB + 8 + bar)  # room for the bar when many images
        layout.addWidget(self.scroll, 1)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("imageCount")
        self.count_label.setStyleSheet("color: palette(placeholder-text); font-size: 8.5pt;")
        count_box = QVBoxLayout()
        count_box.setContentsMargins(
            0, max(0, (THUMB + 8 - self.count_label.sizeHint().height()) // 2), 0, 0
        )
        count_box.addWidget(self.count_label)
        count_box.addStretch(1)
        layout.addLayout(count_box)
        layout.addStretch(0)  # takes the room while no thumbnails are shown
        self._layout = layout
        self._refresh()

    # -- state -------------------------------------------------------------------------
    @property
    def images(self) -> tuple[str, ...]:
        """The accepted (checked) images' paths, in the order they were added."""
        return tuple(p for p in self._order if p not in self._jobs)

    @property
    def pending(self) -> int:
        """How many images are still being checked."""
        return len(self._jobs)

    @property
    def busy(self) -> bool:
        """Whether some images are still being checked (do not send yet)."""
        return bool(self._jobs)

    def store_all(self) -> tuple[str, ...]:
        """Copy every attached image into Herd's images folder; returns their refs.

        The refs (``sha256:<hex>``) are what a ChatMessage's ``images`` and the chat store
        keep. Call it when the message is sent, never while :attr:`busy`.

        Raises:
            HerdError: an image changed or vanished since it was attached, or the copy failed
                (the draft is left as it was).
            RuntimeError: some images are still being checked (a bug in the caller).
        """
        if self.busy:
            raise RuntimeError("store_all() called while images are being checked")
        return tuple(attachments.import_image(self._paths, p).ref for p in self.images)

    def add_paths(self, paths: Iterable[str | os.PathLike[str]]) -> int:
        """Queue images for checking; each is shown at once with a placeholder.

        The checks (a full decode) and thumbnails run on worker threads. Each image that
        passes replaces its placeholder and emits :attr:`images_changed`; each refused one
        disappears and emits :attr:`image_rejected`, as does one over :data:`MAX_IMAGES`
        (pending ones count) or any while images are disabled. Duplicates are ignored.
        Use :attr:`busy`, :attr:`checks_finished` or :meth:`wait_until_checked` to know
        when every check is done.

        Returns:
            How many were queued for checking (not how many will pass).
        """
        if self._closed:
            return 0
        was_busy = self.busy
        side = int(THUMB * self.devicePixelRatioF())
        queued = 0
        for raw in paths:
            path = str(raw)
            if not self._enabled:
                self.image_rejected.emit(self._reason or "Images cannot be attached now.", "")
                break
            if path in self._order:
                continue  # already attached, or being checked
            if len(self._order) >= MAX_IMAGES:
                self.image_rejected.emit(
                    f"{Path(path).name} was not attached: a message takes at most "
                    f"{MAX_IMAGES} images.",
                    "Send these first, or remove one.",
                )
                continue
            self._jobs[path] = self._checker.submit(path, side)
            self._add_thumb(path)
            queued += 1
        if queued:
            self._refresh()
            if not was_busy:
                self.busy_changed.emit(True)
        return queued

    def wait_until_checked(self, timeout_ms: int = 10_000) -> bool:
        """Run the event loop until no image is pending (for tests and scripts).

        Returns:
            Whether every check finished within ``timeout_ms``.
        """
        if not self.busy:
            return True
        loop = QEventLoop()
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        self.checks_finished.connect(loop.quit)
        timer.start(timeout_ms)
        loop.exec()
        timer.stop()
        self.checks_finished.disconnect(loop.quit)
        return not self.busy

    def remove(self, path: str) -> None:
        """Take one image off the draft; a pending one's check is cancelled."""
        if path not in self._order:
            return
        self._order.remove(path)
        self._drop_thumb(path)
        job = self._jobs.pop(path, None)
        self._refresh()
        if job is None:
            self.images_changed.emit(list(self.images))
        else:
            self._checker.cancel(job)
            self._after_pending_dropped()

    def clear(self) -> None:
        """Remove every image, pending ones too (after the message was sent)."""
        if not self._order:
            return
        had_images = bool(self.images)
        was_busy = self.busy
        self._checker.cancel_all()
        for path in list(self._thumbs):
            self._drop_thumb(path)
        self._order.clear()
        self._jobs.clear()
        self._refresh()
        if had_images:
            self.images_changed.emit([])
        if was_busy:
            self._after_pending_dropped()

    def shutdown(self) -> None:
        """Drop pending checks and join the worker threads (on close). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for path in list(self._jobs):
            self.remove(path)
        self._checker.shutdown()

    def set_enabled_reason(self, enabled: bool, reason: str = "") -> None:
        """Allow images, or refuse them with ``reason`` as the button's tooltip.

        Attached images stay (the person may load a model with a projector next).
        """
        self._enabled = enabled
        self._reason = reason
        self._refresh()

    def paste_from_clipboard(self) -> bool:
        """Attach the clipboard's image (saved into the images folder) or image files.

        Returns:
            Whether the clipboard held something to attach (even if it was refused).
        """
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            return False
        files = image_paths_from_mime(mime)
        if files:
            self.add_paths(files)
            return True
        if not mime.hasImage():
            return False
        if not self._enabled:
            self.image_rejected.emit(self._reason or "Images cannot be attached now.", "")
            return True
        image = QImage(mime.imageData())
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        # PySide6's stub types the format as bytes, but at run time only a str is accepted
        image.save(buffer, "PNG")  # type: ignore[call-overload]
        buffer.close()
        try:
            stored = attachments.import_bytes(self._paths, bytes(data.data()))
        except HerdError as exc:
            self.image_rejected.emit(exc.user_message, exc.hint)
            return True
        self.add_paths([stored.path])
        return True

    # -- drag and drop ------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        """Take a drag of files while images are allowed."""
        if self._enabled and image_paths_from_mime(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        """Attach the dropped files (each is checked)."""
        files = image_paths_from_mime(event.mimeData())
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(files)

    # -- slots ---------------------------------------------------------------------------
    @Slot()
    def _on_attach_button_clicked(self) -> None:
        patterns = " ".join(f"*{s}" for s in vision.supported_suffixes())
        files, _ = QFileDialog.getOpenFileNames(
            self, "Attach images", str(Path.home()), f"Images ({patterns});;All files (*)"
        )
        if files:
            self.add_paths(files)

    @Slot(str)
    def _on_thumb_remove_requested(self, path: str) -> None:
        self.remove(path)

    @Slot(object)
    def _on_checker_checked(self, result: CheckResult) -> None:
        if self._jobs.get(result.path) != result.job:
            return  # removed (or removed and added again) meanwhile
        del self._jobs[result.path]
        if result.info is None:
            self._order.remove(result.path)
            self._drop_thumb(result.path)
            self._refresh()
            self.image_rejected.emit(result.message, result.hint)
        else:
            self._thumbs[result.path].set_checked(result.info, result.thumbnail)
            self._refresh()
            self.images_changed.emit(list(self.images))
        if not self._jobs:
            self._after_pending_dropped()

    # -- helpers -------------------------------------------------------------------------
    def _add_thumb(self, path: str) -> None:
        thumb = ImageThumb(path, self.strip)
        thumb.remove_requested.connect(self._on_thumb_remove_requested)
        self._thumbs[path] = thumb
        self._order.append(path)
        self._strip_layout.insertWidget(self._strip_layout.count() - 1, thumb)

    def _drop_thumb(self, path: str) -> None:
        thumb = self._thumbs.pop(path)
        self._strip_layout.removeWidget(thumb)
        thumb.deleteLater()

    def _after_pending_dropped(self) -> None:
        if not self._jobs:
            self.busy_changed.emit(False)
            self.checks_finished.emit()

    def _refresh(self) -> None:
        self.attach_button.setEnabled(self._enabled)
        if self._enabled:
            self.attach_button.setToolTip(
                "Attach images for the model to look at (or drop them here, or paste)"
            )
        else:
            self.attach_button.setToolTip(self._reason or "Images cannot be attached now.")
        self.scroll.setVisible(bool(self._order))
        self.setVisible(bool(self._order))
        self._layout.setStretch(self._layout.count() - 1, 0 if self._order else 1)
        n = len(self._order)
        self.count_label.setText(f"{n} of {MAX_IMAGES}" if n else "")
        self.count_label.setToolTip(f"Checking {self.pending}\u2026" if self._jobs else "")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        """Wide enough for the button and a few thumbnails."""
        hint = super().sizeHint()
        return QSize(max(hint.width(), 360), hint.height())
