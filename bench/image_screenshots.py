"""Screenshots of image input: a transcript with an image, and the composer holding three.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/image_screenshots.py [OUT_DIR]

Loads the tiny random Llama 4 with its tiny vision projector (written by the test fixtures
into ~/.cache/herd-tests, a few MB), so the image panel is enabled the way it is for a
real Scout with its mmproj. The transcript is seeded in the chat store (a photo and a
written reply), since a random model's words would say nothing. Saves
``images.png`` and ``images-dark.png`` into OUT_DIR (default: ``screenshots/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image, ImageDraw  # noqa: E402
from PySide6.QtWidgets import QApplication, QStyleFactory  # noqa: E402

from app.core.chat import attachments  # noqa: E402
from app.core.chat.messages import ChatMessage, Role  # noqa: E402
from app.core.chat.store import ChatStore  # noqa: E402
from app.core.chat.store_schema import ReplyStats  # noqa: E402
from app.core.paths import AppPaths  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.ui.theme import dark_palette  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from screenshots import settle, shoot, wait_for  # noqa: E402

QUESTION = "What is in this picture, and what time of day is it?"
REPLY = (
    "A **mountain lake at dusk**: a dark ridge against an orange sky, the sun just below "
    "the horizon, and its light reflected on still water.\n\n"
    "- Time of day: shortly after sunset (the sky is warm near the horizon, dark above)\n"
    "- No people or animals are visible"
)


def vision_model(folder: Path) -> Path:
    """The tiny Scout and its projector side by side, as a download would put them."""
    from tests.conftest import _tiny_llama4, _tiny_mmproj

    cache = Path.home() / ".cache" / "herd-tests"
    cache.mkdir(parents=True, exist_ok=True)
    model = _tiny_llama4(cache, "scout", n_layers=4, n_experts=16, interleave_moe_layer_step=1)
    projector = _tiny_mmproj(cache, "llama4", text_n_embd=64)
    shutil.copyfile(model, folder / "tiny-llama4-scout.gguf")
    shutil.copyfile(projector, folder / "mmproj-tiny-llama4-scout.gguf")
    return folder / "tiny-llama4-scout.gguf"


def picture(path: Path, sky: tuple[int, int, int], size: tuple[int, int] = (480, 320)) -> Path:
    """A small landscape drawn with Pillow: a sky, a sun, a ridge and water."""
    image = Image.new("RGB", size, sky)
    draw = ImageDraw.Draw(image)
    w, h = size
    for y in range(h // 2):  # the sky darkens upwards
        t = y / (h / 2)
        draw.line([(0, y), (w, y)], fill=tuple(int(c * (0.35 + 0.65 * t)) for c in sky))
    draw.ellipse([w * 0.55, h * 0.38, w * 0.7, h * 0.58], fill=(255, 214, 120))
    draw.polygon([(0, h * 0.55), (w * 0.3, h * 0.3), (w * 0.6, h * 0.52), (w, h * 0.4),
                  (w, h * 0.6), (0, h * 0.6)], fill=(40, 44, 60))  # fmt: skip
    draw.rectangle([0, h * 0.6, w, h], fill=tuple(c // 3 for c in sky))
    image.save(path)
    return path


def run_theme(out: Path, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = AppPaths.under(root / "home").ensure()
        model = vision_model(root)
        photos = [
            picture(root / f"photo{i}.png", sky)
            for i, sky in enumerate(((250, 140, 60), (90, 150, 230), (120, 200, 140)))
        ]
        with ChatStore(paths.chats_db) as store:
            chat = store.create_conversation("Mountain lake at dusk")
            ref = attachments.import_image(paths, photos[0]).ref
            store.add_message(chat.id, ChatMessage(Role.USER, QUESTION, (ref,)))
            store.add_message(
                chat.id, ChatMessage(Role.ASSISTANT, REPLY), stats=ReplyStats(38.2, 41, 64)
            )
            store.set_state("open_conversation", str(chat.id))
        base = Settings()
        settings = dataclasses.replace(base, load=dataclasses.replace(base.load, n_ctx=2048))
        window = MainWindow(paths, settings)
        window.show()
        try:
            window.load_model(model)
            if not wait_for(window.bridge.loaded, 60):
                raise SystemExit("the model did not load")
            panel = window.composer.image_panel
            assert panel is not None
            panel.add_paths(photos)
            panel.wait_until_checked()  # the checks run off the GUI thread
            window.composer.editor.setPlainText("Which of these three was taken first?")
            settle(300)
            shoot(window, out, "images", suffix)
        finally:
            window.close()
            window.deleteLater()
            settle(50)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(REPO / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Herd")
    app.setStyle(QStyleFactory.create("Fusion"))
    for palette, suffix in ((app.style().standardPalette(), ""), (dark_palette(), "-dark")):
        app.setPalette(palette)
        run_theme(out, suffix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
