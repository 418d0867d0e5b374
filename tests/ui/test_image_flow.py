"""Images in the real window: attach, send through the tiny Llama 4 and its projector, keep,
show after a restart, and clean up when the chat is deleted for good."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from app.core.chat.messages import Role
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings, Settings
from app.ui.main_window import MainWindow
from tests.ui.conftest import load_with


def _settings() -> Settings:
    return Settings(
        load=LoadSettings(n_ctx=1024, n_threads=1),
        sampling=SamplingSettings(max_tokens=4, seed=1),
        default_preset_id="none",
    )


@pytest.fixture
def home(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "home").ensure()


def _window(qtbot, home: AppPaths) -> MainWindow:
    window = MainWindow(home, _settings())
    qtbot.addWidget(window)
    window.show()
    return window


def _photo(path: Path, color: str) -> Path:
    Image.new("RGB", (64, 48), color).save(path)
    return path


def test_images_go_to_the_model_are_saved_and_cleaned_up(
    qtbot, home: AppPaths, tmp_path: Path, tiny_vision_model: Path, tiny_scout: Path
) -> None:
    window = _window(qtbot, home)
    panel = window.composer.image_panel
    assert panel is not None and not panel.attach_button.isEnabled()  # no model yet
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
        load_with(window, tiny_vision_model, n_ctx=1024)
    assert panel.attach_button.isEnabled()

    photos = [_photo(tmp_path / "a.png", "red"), _photo(tmp_path / "b.jpg", "blue")]
    assert panel.add_paths(photos) == 2
    assert panel.wait_until_checked()  # checked off the GUI thread
    qtbot.keyClicks(window.composer.editor, "What colours are these?")
    with qtbot.waitSignal(window.bridge.prompt_fitted, timeout=60_000) as fitted:
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    with_images = fitted.args[0].prompt_tokens
    qtbot.waitSignal(window.bridge.reply_finished, timeout=60_000).wait()
    qtbot.waitUntil(lambda: not window.conversations.streaming, timeout=5_000)
    assert panel.images == () and window.composer.text == ""  # sent: the draft is empty

    (user, _reply) = window.chat_view.bubbles
    assert user.role is Role.USER and len(user.images) == 2
    assert all(Path(p).parent == home.images for p in user.images)  # copies, by sha256
    stored = window.store.messages(window.conversations.session.conversation_id)[0]
    assert all(ref.startswith("sha256:") for ref in stored.images)
    text_only = window.bridge.client.count_tokens(
        messages=[m.__class__(m.role, m.content) for m in window.history[:1]]
    )
    assert with_images > text_only + 2  # each image brought its own tokens

    window.close()  # a restart shows the images again
    again = _window(qtbot, home)
    assert [len(b.images) for b in again.chat_view.bubbles] == [2, 0]
    assert all(Path(p).is_file() for p in again.chat_view.bubbles[0].images)

    again.sidebar.delete_requested.emit(again.conversations.session.conversation_id)
    assert len(list(home.images.iterdir())) == 2  # undo is still possible
    again.undo_banner.close_button.click()  # the delete stands
    assert list(home.images.iterdir()) == []
    again.close()


def test_a_text_only_model_disables_images_and_says_why(
    qtbot, home: AppPaths, tiny_scout: Path
) -> None:
    window = _window(qtbot, home)
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
        load_with(window, tiny_scout, n_ctx=1024)
    panel = window.composer.image_panel
    assert panel is not None and not panel.attach_button.isEnabled()
    assert "mmproj" in panel.attach_button.toolTip()
    window.close()


def test_a_broken_image_is_refused_and_the_draft_stays(
    qtbot, home: AppPaths, tmp_path: Path, tiny_vision_model: Path
) -> None:
    window = _window(qtbot, home)
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
        load_with(window, tiny_vision_model, n_ctx=1024)
    bogus = tmp_path / "holiday.png"
    bogus.write_text("this is not a picture")
    qtbot.keyClicks(window.composer.editor, "Look at this")
    panel = window.composer.image_panel
    assert panel is not None
    assert panel.add_paths([bogus]) == 1  # queued; the check off the GUI thread refuses it
    assert panel.wait_until_checked() and panel.images == ()
    assert "holiday.png" in window.error_banner.message_label.text()  # the one error place
    assert window.error_banner.isVisible() and "holiday.png" in window.error_banner.text
    assert window.composer.text == "Look at this"
    window.close()


def test_a_projector_chosen_by_the_person_enables_images(
    qtbot, home: AppPaths, tmp_path: Path, tiny_scout: Path, tiny_vision_model: Path
) -> None:
    import shutil

    lone = tmp_path / "alone" / "scout.gguf"  # no mmproj beside it
    lone.parent.mkdir()
    shutil.copyfile(tiny_scout, lone)
    projector = next(tiny_vision_model.parent.glob("mmproj*.gguf"))
    window = _window(qtbot, home)
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
        load_with(window, lone, n_ctx=1024)
    panel = window.composer.image_panel
    assert panel is not None and not panel.attach_button.isEnabled()
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000) as loaded:
        window.models.use_projector(projector)
    assert loaded.args[0].vision and panel.attach_button.isEnabled()
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000) as loaded:
        window.models.reload()  # the same model keeps its projector
    assert loaded.args[0].vision
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000) as loaded:
        load_with(window, tiny_scout, n_ctx=1024)  # another model does not inherit it
    assert not loaded.args[0].vision
    window.close()


def test_the_meter_counts_attached_images_before_sending(
    qtbot, home: AppPaths, tmp_path: Path, tiny_vision_model: Path
) -> None:
    window = _window(qtbot, home)
    with qtbot.waitSignal(window.bridge.loaded, timeout=60_000):
        load_with(window, tiny_vision_model, n_ctx=1024)
    with qtbot.waitSignal(window.bridge.draft_counted, timeout=10_000) as text_only:
        window.composer.editor.setPlainText("What is this?")
    panel = window.composer.image_panel
    assert panel is not None
    with qtbot.waitSignal(window.bridge.draft_counted, timeout=10_000) as with_image:
        panel.add_paths([_photo(tmp_path / "c.png", "green")])
    total, draft = with_image.args
    assert total > text_only.args[0] + 2 and draft > text_only.args[1] + 2
    assert window.context_meter.used == total
    assert window.composer.token_label.text() == f"{draft:,} tokens"
    window.close()
