"""ImagePanel: thumbnails with remove buttons, checks with core/vision, drops and paste."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from app.core.paths import AppPaths
from app.ui.image_panel import MAX_IMAGES, ImagePanel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "home").ensure()


@pytest.fixture
def panel(qtbot, paths: AppPaths) -> ImagePanel:  # noqa: ANN001 - pytest-qt's fixture
    widget = ImagePanel(paths)
    qtbot.addWidget(widget)
    return widget


def _image(path: Path, color: str, size: tuple[int, int] = (80, 60)) -> Path:
    img = Image.new("RGB", size, color)
    img.paste("white", (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    img.save(path)
    return path


def test_add_show_and_remove(qtbot, panel: ImagePanel, tmp_path: Path) -> None:  # noqa: ANN001
    a, b = _image(tmp_path / "a.png", "red"), _image(tmp_path / "b.jpg", "blue")
    with qtbot.waitSignal(panel.images_changed) as changed:
        assert panel.add_paths([a, b]) == 2
    assert changed.args == [[str(a), str(b)]]
    assert panel.images == (str(a), str(b))
    assert panel.add_paths([a]) == 0  # the same file twice is attached once
    thumb = panel._thumbs[str(a)]
    assert not thumb.picture.pixmap().isNull()
    assert "80 x 60 PNG" in thumb.toolTip()
    with qtbot.waitSignal(panel.images_changed) as changed:
        qtbot.mouseClick(thumb.remove_button, Qt.MouseButton.LeftButton)
    assert changed.args == [[str(b)]]
    assert panel.images == (str(b),)
    (ref,) = panel.store_all()
    assert ref.startswith("sha256:")
    assert (panel._paths.images / f"{ref[7:]}.jpg").read_bytes() == b.read_bytes()
    panel.clear()
    assert panel.images == ()


def test_bad_images_are_rejected_with_their_reason(
    qtbot,
    panel: ImagePanel,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    good = _image(tmp_path / "good.png", "green")
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    rejected: list[tuple[str, str]] = []
    panel.image_rejected.connect(lambda message, hint: rejected.append((message, hint)))
    assert panel.add_paths([good, fake, empty]) == 1
    assert panel.images == (str(good),)  # the good one stays: nothing is lost
    assert [m for m, _ in rejected] == [
        "notes.png is not an image (or not one Herd can read).",
        "empty.png is empty (0 bytes).",
    ]
    assert all(hint for _, hint in rejected)


def test_at_most_max_images(qtbot, panel: ImagePanel, tmp_path: Path) -> None:  # noqa: ANN001
    files = [_image(tmp_path / f"{i}.png", "red", (10 + i, 10)) for i in range(MAX_IMAGES + 1)]
    rejected: list[str] = []
    panel.image_rejected.connect(lambda message, _hint: rejected.append(message))
    assert panel.add_paths(files) == MAX_IMAGES
    assert len(rejected) == 1 and f"at most {MAX_IMAGES}" in rejected[0]


def test_disabled_without_projector(qtbot, panel: ImagePanel, tmp_path: Path) -> None:  # noqa: ANN001
    reason = "This model has no vision projector (mmproj), so it cannot see images."
    panel.set_enabled_reason(False, reason)
    assert not panel.attach_button.isEnabled()
    assert panel.attach_button.toolTip() == reason
    with qtbot.waitSignal(panel.image_rejected) as rejected:
        assert panel.add_paths([_image(tmp_path / "a.png", "red")]) == 0
    assert rejected.args[0] == reason
    panel.set_enabled_reason(True)
    assert panel.attach_button.isEnabled()
    assert panel.add_paths([tmp_path / "a.png"]) == 1


def test_drop_files(qtbot, panel: ImagePanel, tmp_path: Path) -> None:  # noqa: ANN001
    path = _image(tmp_path / "drop.png", "purple")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    panel.dropEvent(event)
    assert panel.images == (str(path),)


def test_paste_an_image_from_the_clipboard(
    qtbot,
    panel: ImagePanel,
    paths: AppPaths,  # noqa: ANN001
) -> None:
    clipboard = QGuiApplication.clipboard()
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.darkCyan)
    clipboard.setImage(image)
    try:
        assert panel.paste_from_clipboard()
    finally:
        clipboard.clear()
    (stored,) = panel.images
    assert Path(stored).parent == paths.images
    assert len(Path(stored).stem) == 64  # named by its sha256
    assert Image.open(stored).size == (40, 30)


def test_screenshot_with_three_images(qtbot, paths: AppPaths, tmp_path: Path) -> None:  # noqa: ANN001
    window = QWidget()
    qtbot.addWidget(window)
    window.setWindowTitle("Image panel")
    layout = QVBoxLayout(window)
    panel = ImagePanel(paths, window)
    layout.addWidget(panel)
    photo = tmp_path / "landscape.jpg"
    img = Image.new("RGB", (400, 240), (90, 160, 230))
    img.paste((60, 140, 60), (0, 150, 400, 240))
    img.paste((250, 220, 80), (300, 30, 350, 80))
    img.save(photo, quality=90)
    tall = _image(tmp_path / "portrait.png", "darkred", (120, 300))
    square = _image(tmp_path / "square.png", "orange", (200, 200))
    assert panel.add_paths([photo, tall, square]) == 3
    window.resize(560, 110)
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    out = REPO / "screenshots" / "image_panel.png"
    out.parent.mkdir(exist_ok=True)
    assert window.grab().save(str(out))
    window.close()
