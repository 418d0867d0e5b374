"""How smoothly the chat view takes a streamed reply, offscreen.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/ui_streaming.py [--tokens 2000] [--rate 500]
    .venv/bin/python bench/ui_streaming.py --screenshots [OUT_DIR]

Streams a scripted Markdown reply (paragraphs, lists, a table, code blocks) into the real
ChatView in a shown window, in batches at ~30/s the way the bridge sends them, while a 1 ms
heartbeat timer watches the event loop. Prints ``longest stall: N ms`` (the longest gap
between heartbeats, less the interval) and ``total render time: N ms`` (time spent in the
bubble's renders). ``--screenshots`` instead saves ``chat_markdown_light.png`` and
``chat_markdown_dark.png`` of a conversation with every Markdown element.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication, QStyleFactory, QVBoxLayout, QWidget  # noqa: E402

from app.core import events as ev  # noqa: E402
from app.core.chat.messages import Role  # noqa: E402
from app.ui.chat import chat_view as cv  # noqa: E402
from app.ui.theme import dark_palette  # noqa: E402

BATCH_MS = 33  # the bridge's token batching: ~30 updates a second
HEARTBEAT_MS = 1

SECTION = """## Step {n}: loading the data

Here is how to read the file with `pandas` and keep only the rows you need. The function
below is **fast enough** for a few million rows, and *easy* to test.

```python
import pandas as pd


def load(path: str, min_score: float = 0.5) -> pd.DataFrame:
    \"\"\"Read the CSV and keep the good rows.\"\"\"
    frame = pd.read_csv(path)
    frame = frame[frame["score"] >= min_score]
    return frame.sort_values("score", ascending=False)  # best first
```

What each option does:

| Option | Default | Meaning |
|:-------|--------:|---------|
| `path` | none | the CSV file to read |
| `min_score` | 0.5 | rows below it are dropped |
| `ascending` | False | best rows come first |

1. Install pandas: `pip install pandas`.
2. Call `load("scores.csv")`.
   - Check the row count.
   - Look at the first rows with `frame.head()`.
3. Save the result with `to_parquet`.

> Tip: a large file reads faster with `engine="pyarrow"`.

"""

CONVERSATION_USER = "How do I load a CSV with **pandas** and keep the rows with `score >= 0.5`?"
CONVERSATION_REPLY = SECTION.format(n=1).replace("## Step 1: loading", "# Loading") + (
    "That's all: `load()` returns the rows sorted, ready to use."
)


def scripted_tokens(n_tokens: int) -> list[str]:
    """``n_tokens`` pieces of Markdown, cut like a tokenizer would (word-ish pieces)."""
    pieces: list[str] = []
    n = 1
    while len(pieces) < n_tokens:
        pieces += re.findall(r"\s*\S{1,4}|\s+", SECTION.format(n=n))
        n += 1
    return pieces[:n_tokens]


def make_window(app: QApplication) -> tuple[QWidget, cv.ChatView]:
    window = QWidget()
    window.setWindowTitle("ui_streaming")
    window.resize(1000, 720)
    layout = QVBoxLayout(window)
    layout.setContentsMargins(0, 0, 0, 0)
    view = cv.ChatView(window)
    layout.addWidget(view)
    window.show()
    settle(app, 100)
    return window, view


def settle(app: QApplication, ms: int) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def stream(app: QApplication, n_tokens: int, rate: float) -> int:
    render_s = [0.0]
    original = cv.MessageBubble._render

    def timed_render(self: cv.MessageBubble) -> None:
        started = time.perf_counter()
        original(self)
        render_s[0] += time.perf_counter() - started

    cv.MessageBubble._render = timed_render  # type: ignore[method-assign]
    window, view = make_window(app)
    tokens = scripted_tokens(n_tokens)
    view.add_user_message("Show me, step by step, how to load and clean a CSV with pandas.")
    view.begin_reply()

    gaps: list[float] = []
    beats: list[float] = []
    last_beat = [time.perf_counter()]
    state = {"sent": 0, "batches": 0, "started": time.perf_counter()}
    loop = QEventLoop()

    def on_heartbeat() -> None:
        now = time.perf_counter()
        gaps.append(now - last_beat[0])
        beats.append(now - state["started"])
        last_beat[0] = now

    def on_feed() -> None:
        due = min(len(tokens), int((time.perf_counter() - state["started"]) * rate))
        if due > state["sent"]:
            view.append_reply("".join(tokens[state["sent"] : due]))
            state["sent"] = due
            state["batches"] += 1
        if state["sent"] >= len(tokens):
            feeder.stop()
            view.finish_reply(ev.Finished(10, len(tokens), 900.0, rate, ev.StopReason.END_OF_TURN))
            QTimer.singleShot(400, loop.quit)  # keep watching while the finish settles

    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(on_heartbeat)
    feeder = QTimer()
    feeder.setTimerType(Qt.TimerType.PreciseTimer)
    feeder.setInterval(BATCH_MS)
    feeder.timeout.connect(on_feed)
    heartbeat.start()
    feeder.start()
    wall = time.perf_counter()
    loop.exec()
    wall = time.perf_counter() - wall
    heartbeat.stop()

    reply = view.bubbles[-1]
    stall_ms = max(0.0, max(gaps) * 1000 - HEARTBEAT_MS)
    slow = sum(1 for g in gaps if g * 1000 - HEARTBEAT_MS > 16)
    print(f"tokens: {len(tokens)} in {state['batches']} batches, {wall:.2f} s wall")
    print(f"final text matches: {reply.text == ''.join(tokens)}")
    print(f"blocks: {len(reply.body.block_widgets)}, code blocks: {len(reply.code_blocks())}")
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    print(f"heartbeat gaps over 16 ms: {slow}; the longest ended {beats[worst]:.2f} s in")
    print(f"longest stall: {round(stall_ms)} ms")
    print(f"total render time: {round(render_s[0] * 1000)} ms")
    cv.MessageBubble._render = original  # type: ignore[method-assign]
    window.close()
    return 0


def sample_image(path: Path) -> str:
    image = QImage(320, 200, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    gradient = QLinearGradient(0, 0, 320, 200)
    gradient.setColorAt(0, QColor("#3d8ee0"))
    gradient.setColorAt(1, QColor("#f4a261"))
    painter.fillRect(image.rect(), gradient)
    painter.end()
    image.save(str(path))
    return str(path)


def screenshots(app: QApplication, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    image = sample_image(out / "sample_chart.png")
    light = app.style().standardPalette()
    for palette, name in ((light, "light"), (dark_palette(), "dark")):
        app.setPalette(palette)
        window, view = make_window(app)
        window.resize(900, 1250)
        view.load_messages(
            [
                cv.ShownMessage(Role.USER, CONVERSATION_USER, images=(image,)),
                cv.ShownMessage(
                    Role.ASSISTANT, CONVERSATION_REPLY, "12:01  ·  4.2 s  ·  310 tokens"
                ),
                cv.ShownMessage(Role.USER, "Thanks! Short answer please: is it fast?"),
                cv.ShownMessage(Role.ASSISTANT, "Yes, for *millions* of rows."),
            ]
        )
        settle(app, 300)
        view.verticalScrollBar().setValue(0)
        settle(app, 100)
        path = out / f"chat_markdown_{name}.png"
        window.grab().save(str(path))
        print(f"saved {path}")
        window.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500.0, help="tokens a second")
    parser.add_argument("--screenshots", nargs="?", const=str(REPO / "screenshots"))
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setStyle(QStyleFactory.create("Fusion"))
    if args.screenshots:
        return screenshots(app, Path(args.screenshots))
    return stream(app, args.tokens, args.rate)


if __name__ == "__main__":
    sys.exit(main())
