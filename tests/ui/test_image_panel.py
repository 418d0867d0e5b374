"""ImagePanel: thumbnails with remove buttons, checks with core/vision, drops and paste."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from app.core import vision
from app.core.paths import AppPaths
from app.ui.chat.composer import Composer
from app.ui.images.image_panel import MAX_IMAGES, ImagePanel

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
    with qtbot.waitSignal(panel.checks_finished):
        assert panel.add_paths([a, b]) == 2
    assert panel.images == (str(a), str(b))  # the order added, whichever check ended first
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
    assert panel.add_paths([good, fake, empty]) == 3  # queued: the checks come later
    assert panel.wait_until_checked()
    assert panel.images == (str(good),)  # the good one stays: nothing is lost
    assert sorted(m for m, _ in rejected) == [  # checks run in parallel: any order
        "empty.png is empty (0 bytes).",
        "notes.png is not an image (or not one Herd can read).",
    ]
    assert all(hint for _, hint in rejected)


def test_at_most_max_images(qtbot, panel: ImagePanel, tmp_path: Path) -> None:  # noqa: ANN001
    files = [_image(tmp_path / f"{i}.png", "red", (10 + i, 10)) for i in range(MAX_IMAGES + 1)]
    rejected: list[str] = []
    panel.image_rejected.connect(lambda message, _hint: rejected.append(message))
    assert panel.add_paths(files) == MAX_IMAGES  # pending ones count
    assert len(rejected) == 1 and f"at most {MAX_IMAGES}" in rejected[0]
    assert panel.wait_until_checked()
    assert len(panel.images) == MAX_IMAGES


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
    assert panel.wait_until_checked()


def test_drop_files(qtbot, panel: ImagePanel, tmp_path: Path) -> None:  # noqa: ANN001
    path = _image(tmp_path / "drop.png", "purple")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    panel.dropEvent(event)
    qtbot.waitUntil(lambda: not panel.busy)
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
    assert panel.wait_until_checked()
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
    assert panel.wait_until_checked()
    window.resize(560, 110)
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    out = REPO / "screenshots" / "image_panel.png"
    out.parent.mkdir(exist_ok=True)
    assert window.grab().save(str(out))
    window.close()


# -- checks off the GUI thread ------------------------------------------------------------
@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-megapixel photo-like JPEG: a full decode takes a good part of a second."""
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    noise = Image.effect_noise((750, 500), 60).convert("RGB").resize((6000, 4000))
    noise.save(path, quality=90)
    return path


@pytest.fixture
def stalled(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Checks wait for the returned event to be set (so an image stays pending)."""
    from app.ui.images import image_checker

    release = threading.Event()
    real = image_checker.check

    def slow(job: int, path: str, side: int) -> image_checker.CheckResult:
        release.wait(10)
        return real(job, path, side)

    monkeypatch.setattr(image_checker, "check", slow)
    yield release
    release.set()


def _check_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("herd-image-check")]


def test_a_large_image_is_checked_off_the_gui_thread(
    qtbot,
    panel: ImagePanel,
    big_jpeg: Path,  # noqa: ANN001
) -> None:
    started = time.perf_counter()
    vision.check_image(big_jpeg)
    check_s = time.perf_counter() - started

    busy: list[bool] = []
    panel.busy_changed.connect(busy.append)
    started = time.perf_counter()
    assert panel.add_paths([big_jpeg]) == 1
    add_s = time.perf_counter() - started
    print(f"add_paths {add_s * 1000:.1f} ms, check_image {check_s * 1000:.0f} ms")
    assert add_s < 0.05 and add_s < check_s / 4
    assert panel.busy and panel.pending == 1 and busy == [True]
    assert panel.images == ()  # not checked yet: not offered to the model
    assert panel._thumbs[str(big_jpeg)].pending  # a placeholder is shown meanwhile
    with pytest.raises(RuntimeError):
        panel.store_all()

    with qtbot.waitSignal(panel.images_changed, timeout=10_000) as changed:
        pass
    assert changed.args == [[str(big_jpeg)]]
    assert panel.wait_until_checked() and busy == [True, False]
    thumb = panel._thumbs[str(big_jpeg)]
    assert not thumb.pending and not thumb.picture.pixmap().isNull()
    assert "6000 x 4000 JPEG" in thumb.toolTip()


def test_removing_a_pending_image_cancels_its_check(
    qtbot,
    panel: ImagePanel,
    tmp_path: Path,
    stalled: threading.Event,  # noqa: ANN001
) -> None:
    a, b = _image(tmp_path / "a.png", "red"), _image(tmp_path / "b.png", "blue")
    changes: list[list[str]] = []
    panel.images_changed.connect(changes.append)
    assert panel.add_paths([a, b]) == 2
    assert panel.pending == 2
    qtbot.mouseClick(panel._thumbs[str(a)].remove_button, Qt.MouseButton.LeftButton)
    assert panel.pending == 1 and str(a) not in panel._thumbs
    assert panel._checker.pending == 1
    with qtbot.waitSignal(panel.checks_finished, timeout=10_000):
        stalled.set()
    QApplication.processEvents()  # a's result, if any, arrives and is ignored
    assert panel.images == (str(b),)
    assert changes == [[str(b)]]
    assert panel.add_paths([a]) == 1  # it can be attached again
    assert panel.wait_until_checked()
    assert panel.images == (str(b), str(a))


def test_clear_drops_pending_images(
    qtbot,
    panel: ImagePanel,
    tmp_path: Path,
    stalled: threading.Event,  # noqa: ANN001
) -> None:
    assert panel.add_paths([_image(tmp_path / "a.png", "red")]) == 1
    with qtbot.waitSignal(panel.checks_finished):
        panel.clear()
    assert not panel.busy and panel.images == () and panel._thumbs == {}
    stalled.set()
    QApplication.processEvents()
    assert panel.images == () and panel.wait_until_checked(100)


def test_threads_are_joined_on_shutdown_and_when_destroyed(
    qtbot,
    paths: AppPaths,
    big_jpeg: Path,  # noqa: ANN001
) -> None:
    first = ImagePanel(paths)
    assert first.add_paths([big_jpeg]) == 1
    assert _check_threads()
    first.shutdown()
    assert _check_threads() == [] and not first.busy
    assert first.add_paths([big_jpeg]) == 0  # closed
    first.deleteLater()

    second = ImagePanel(paths)
    assert second.add_paths([big_jpeg]) == 1
    second.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert _check_threads() == []


def test_send_waits_for_the_checks(qtbot, paths: AppPaths, big_jpeg: Path) -> None:  # noqa: ANN001
    composer = Composer(paths=paths)
    qtbot.addWidget(composer)
    composer.set_ready(True)
    composer.editor.setPlainText("What is this?")
    assert composer.button.isEnabled()
    sent: list[str] = []
    composer.send_requested.connect(sent.append)
    assert composer.image_panel is not None
    composer.image_panel.add_paths([big_jpeg])
    assert not composer.button.isEnabled()
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    assert sent == []  # Enter waits too
    qtbot.waitUntil(composer.button.isEnabled, timeout=10_000)
    assert composer.images == (str(big_jpeg),)


def test_screenshot_with_a_pending_image(
    qtbot,
    paths: AppPaths,
    tmp_path: Path,
    stalled: threading.Event,  # noqa: ANN001
) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    window.setWindowTitle("Image panel")
    layout = QVBoxLayout(window)
    panel = ImagePanel(paths, window)
    layout.addWidget(panel)
    stalled.set()
    checked = [
        _image(tmp_path / "sky.png", "steelblue", (160, 100)),
        _image(tmp_path / "tall.png", "darkred", (120, 300)),
    ]
    assert panel.add_paths(checked) == 2
    assert panel.wait_until_checked()
    stalled.clear()
    assert panel.add_paths([_image(tmp_path / "later.png", "orange", (200, 200))]) == 1
    window.resize(560, 110)
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    assert panel.pending == 1 and len(panel.images) == 2
    out = REPO / "screenshots" / "image_panel_pending.png"
    out.parent.mkdir(exist_ok=True)
    assert window.grab().save(str(out))
    window.close()
    stalled.set()
    panel.shutdown()
