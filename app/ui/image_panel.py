"""ImagePanel: the images attached to the message being written, as a strip of thumbnails.

Images arrive from the "Attach image" dialog, from drops of image files and from the
clipboard. Each is checked with :func:`app.core.vision.check_image` before it is shown; a
refused one is reported through :attr:`ImagePanel.image_rejected` and the draft is left as
it was. The panel is self-contained: the composer places it, listens to its signals and
reads :attr:`ImagePanel.images` when the message is sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, QSize, Qt, Signal, Slot
from PySide6.QtGui import (
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QImageReader,
    QPixmap,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core import vision
from app.core.chat import attachments
from app.core.errors import HerdError
from app.core.paths import AppPaths

MAX_IMAGES = 10  # Llama 4 was trained with up to about 8-10 images per message
THUMB = 64  # thumbnail side, in device-independent pixels


def image_paths_from_mime(mime: QMimeData) -> list[str]:
    """The local files a drag or a clipboard carries (any file: checking comes later)."""
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]


class ImageThumb(QFrame):
    """One attached image: its thumbnail and a remove (x) button."""

    remove_requested = Signal(str)

    def __init__(self, path: str, info: vision.ImageInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.setObjectName("imageThumb")
        self.setFixedSize(THUMB + 8, THUMB + 8)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip(
            f"{Path(path).name}\n{info.width} x {info.height} {info.format}, "
            f"{info.file_bytes / 1024:,.0f} KiB"
        )
        self.picture = QLabel(self)
        self.picture.setObjectName("imageThumbPicture")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setGeometry(4, 4, THUMB, THUMB)
        self.picture.setPixmap(_thumbnail(path, self.devicePixelRatioF()))
        self.remove_button = QToolButton(self)
        self.remove_button.setObjectName("imageRemoveButton")
        self.remove_button.setText("\u00d7")
        self.remove_button.setToolTip(f"Remove {Path(path).name}")
        self.remove_button.setAccessibleName(f"Remove {Path(path).name}")
        self.remove_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.remove_button.setFixedSize(20, 20)
        self.remove_button.move(self.width() - 22, 2)
        self.remove_button.setStyleSheet(
            "QToolButton#imageRemoveButton { border: none; border-radius: 10px;"
            " background: rgba(0, 0, 0, 160); color: white; font-weight: bold; }"
            "QToolButton#imageRemoveButton:hover { background: rgba(200, 30, 30, 220); }"
        )
        self.remove_button.clicked.connect(self._on_remove_button_clicked)

    @Slot()
    def _on_remove_button_clicked(self) -> None:
        self.remove_requested.emit(self.path)


def _thumbnail(path: str, ratio: float) -> QPixmap:
    """A scaled, EXIF-rotated preview, decoded at thumbnail size (fast for large photos)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    side = int(THUMB * ratio)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > side:
        reader.setScaledSize(size.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():  # a format Qt lacks (AVIF, HEIC): decode with Pillow instead
        image = _pillow_thumbnail(path, side)
    pixmap = QPixmap.fromImage(image).scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    pixmap.setDevicePixelRatio(ratio)
    return pixmap


def _pillow_thumbnail(path: str, side: int) -> QImage:
    try:
        img = vision.load_rgb(path, max_side=side)
    except HerdError:
        return QImage()
    data = img.tobytes()
    return QImage(data, img.width, img.height, 3 * img.width, QImage.Format.Format_RGB888).copy()


class ImagePanel(QFrame):
    """The images attached to the draft: add, show, remove; refuse bad ones with a reason."""

    images_changed = Signal(list)  # the accepted paths, in order
    image_rejected = Signal(str, str)  # (message, hint) for a refused image

    def __init__(self, paths: AppPaths, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imagePanel")
        self.setAcceptDrops(True)
        self._paths = paths
        self._images: list[str] = []
        self._thumbs: dict[str, ImageThumb] = {}
        self._enabled = True
        self._reason = ""
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.attach_button = QPushButton("Attach image\u2026", self)
        self.attach_button.setObjectName("attachImageButton")
        self.attach_button.setAutoDefault(False)
        self.attach_button.clicked.connect(self._on_attach_button_clicked)
        button_box = QVBoxLayout()
        # centred on the thumbnails, not on the strip (which keeps room for a scroll bar)
        button_box.setContentsMargins(
            0, max(0, (THUMB + 8 - self.attach_button.sizeHint().height()) // 2), 0, 0
        )
        button_box.addWidget(self.attach_button)
        button_box.addStretch(1)
        layout.addLayout(button_box)
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
        """The accepted images' paths, in the order they were added."""
        return tuple(self._images)

    def store_all(self) -> tuple[str, ...]:
        """Copy every attached image into Herd's images folder; returns their refs.

        The refs (``sha256:<hex>``) are what a ChatMessage's ``images`` and the chat store
        keep. Call it when the message is sent.

        Raises:
            HerdError: an image changed or vanished since it was attached, or the copy failed
                (the draft is left as it was).
        """
        return tuple(attachments.import_image(self._paths, p).ref for p in self._images)

    def add_paths(self, paths: Iterable[str | os.PathLike[str]]) -> int:
        """Check and attach images; each refused one emits :attr:`image_rejected`.

        Returns:
            How many were attached.
        """
        added = 0
        for raw in paths:
            path = str(raw)
            if not self._enabled:
                self.image_rejected.emit(self._reason or "Images cannot be attached now.", "")
                break
            if path in self._images:
                continue  # already attached
            if len(self._images) >= MAX_IMAGES:
                self.image_rejected.emit(
                    f"{Path(path).name} was not attached: a message takes at most "
                    f"{MAX_IMAGES} images.",
                    "Send these first, or remove one.",
                )
                continue
            try:
                info = vision.check_image(path)
            except HerdError as exc:
                self.image_rejected.emit(exc.user_message, exc.hint)
                continue
            self._add(path, info)
            added += 1
        if added:
            self._refresh()
            self.images_changed.emit(list(self._images))
        return added

    def remove(self, path: str) -> None:
        """Take one image off the draft."""
        if path not in self._images:
            return
        self._images.remove(path)
        thumb = self._thumbs.pop(path)
        self._strip_layout.removeWidget(thumb)
        thumb.deleteLater()
        self._refresh()
        self.images_changed.emit(list(self._images))

    def clear(self) -> None:
        """Remove every image (after the message was sent)."""
        if not self._images:
            return
        for thumb in self._thumbs.values():
            self._strip_layout.removeWidget(thumb)
            thumb.deleteLater()
        self._thumbs.clear()
        self._images.clear()
        self._refresh()
        self.images_changed.emit([])

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
        image.save(buffer, "PNG")
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

    # -- helpers -------------------------------------------------------------------------
    def _add(self, path: str, info: vision.ImageInfo) -> None:
        thumb = ImageThumb(path, info, self.strip)
        thumb.remove_requested.connect(self._on_thumb_remove_requested)
        self._thumbs[path] = thumb
        self._images.append(path)
        self._strip_layout.insertWidget(self._strip_layout.count() - 1, thumb)

    def _refresh(self) -> None:
        self.attach_button.setEnabled(self._enabled)
        if self._enabled:
            self.attach_button.setToolTip(
                "Attach images for the model to look at (or drop them here, or paste)"
            )
        else:
            self.attach_button.setToolTip(self._reason or "Images cannot be attached now.")
        self.scroll.setVisible(bool(self._images))
        self._layout.setStretch(self._layout.count() - 1, 0 if self._images else 1)
        n = len(self._images)
        self.count_label.setText(f"{n} of {MAX_IMAGES}" if n else "")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        """Wide enough for the button and a few thumbnails."""
        hint = super().sizeHint()
        return QSize(max(hint.width(), 360), hint.height())
