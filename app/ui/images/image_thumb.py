"""ImageThumb: one image attached to the draft, as a thumbnail with a remove button."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QToolButton, QWidget

from app.core import vision

THUMB = 64  # thumbnail side, in device-independent pixels


class ImageThumb(QFrame):
    """One attached image: its thumbnail (a placeholder while checked) and a remove button."""

    remove_requested = Signal(str)

    def __init__(self, path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.setObjectName("imageThumb")
        self.setFixedSize(THUMB + 8, THUMB + 8)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.picture = QLabel(self)
        self.picture.setObjectName("imageThumbPicture")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setGeometry(4, 4, THUMB, THUMB)
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
        self.pending = True
        self.setToolTip(f"{Path(path).name}\nChecking\u2026")
        self.picture.setText("\u2026")
        self.picture.setStyleSheet(
            "QLabel#imageThumbPicture { color: palette(placeholder-text); font-size: 20pt;"
            " background: palette(alternate-base); border-radius: 4px; }"
        )

    def set_checked(self, info: vision.ImageInfo, thumbnail: QImage) -> None:
        """Replace the placeholder with the image's thumbnail and details."""
        self.pending = False
        self.setToolTip(
            f"{Path(self.path).name}\n{info.width} x {info.height} {info.format}, "
            f"{info.file_bytes / 1024:,.0f} KiB"
        )
        self.picture.setStyleSheet("")
        self.picture.setText("")
        self.picture.setPixmap(_pixmap(thumbnail, self.devicePixelRatioF()))

    @Slot()
    def _on_remove_button_clicked(self) -> None:
        self.remove_requested.emit(self.path)


def _pixmap(image: QImage, ratio: float) -> QPixmap:
    """The decoded preview as a pixmap of the thumbnail's size (on the GUI thread)."""
    side = int(THUMB * ratio)
    pixmap = QPixmap.fromImage(image).scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    pixmap.setDevicePixelRatio(ratio)
    return pixmap
