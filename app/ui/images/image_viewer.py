"""Pictures in a message: a thumbnail button, and the full-size viewer it opens."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QIcon, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

THUMB_PX = 160


class ImageThumb(QToolButton):
    """A picture in a message, at most ``THUMB_PX`` square; a click opens it full size."""

    def __init__(self, path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageThumb")
        self.path = path
        self.viewer: ImageViewerDialog | None = None
        self.setAutoRaise(True)
        self.setToolTip(Path(path).name)
        reader = QImageReader(path)
        reader.setAutoTransform(True)
        size = reader.size()
        if size.isValid() and (size.width() > THUMB_PX or size.height() > THUMB_PX):
            size = size.scaled(THUMB_PX, THUMB_PX, Qt.AspectRatioMode.KeepAspectRatio)
            reader.setScaledSize(size)
        image = reader.read()
        if image.isNull():
            self.setText(f"{Path(path).name}\n(image not found)")
            self.setEnabled(False)
        else:
            self.setIcon(QIcon(QPixmap.fromImage(image)))
            self.setIconSize(QSize(image.width(), image.height()))
            self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.clicked.connect(self._on_self_clicked)

    @Slot()
    def _on_self_clicked(self) -> None:
        self.viewer = ImageViewerDialog(self.path, self)
        self.viewer.show()


class ImageViewerDialog(QDialog):
    """A picture at full size, scrollable when it is larger than the screen."""

    def __init__(self, path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageViewer")
        self.setWindowTitle(Path(path).name)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        reader = QImageReader(path)
        reader.setAutoTransform(True)
        self.image_label = QLabel(self)
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_label.setPixmap(QPixmap.fromImage(reader.read()))
        scroll = QScrollArea(self)
        scroll.setWidget(self.image_label)
        scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addWidget(scroll, 1)
        column.addWidget(buttons)
        screen = self.screen().availableGeometry()
        hint = self.image_label.sizeHint() + QSize(40, 80)
        self.resize(
            min(hint.width(), int(screen.width() * 0.8)),
            min(hint.height(), int(screen.height() * 0.8)),
        )
