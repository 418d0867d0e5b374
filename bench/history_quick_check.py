"""What the damage check costs at start-up: ``PRAGMA quick_check`` on a large chat history.

    python bench/history_quick_check.py [--mb 100] [--rounds 3] [--keep PATH]

Builds a history of about ``--mb`` megabytes with the real schema (conversations of short
questions and long replies), then times, each round: ``PRAGMA quick_check`` alone, and a
whole :class:`ChatStore` open (quick_check, WAL switch, migrations, interrupted replies).
The file was just written, so the OS page cache is warm: the figures are for a history
Herd opened recently. A cold disk adds reading the whole file once (100 MB at the
disk's sequential speed).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.chat.store import ChatStore  # noqa: E402
from app.core.chat.store_file import open_database  # noqa: E402
from app.core.chat.store_schema import INSERT_MESSAGE  # noqa: E402

MESSAGES_PER_CONVERSATION = 30
WORDS = "the model layer expert token context cache offload attention chunk reply".split()


def build(path: Path, megabytes: float) -> tuple[int, int]:
    """Fill ``path`` with about ``megabytes`` of conversations; returns their counts."""
    rng = random.Random(4)
    conn = open_database(path)
    conversations = messages = 0
    now = time.time()
    conn.execute("BEGIN")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    while conn.execute("PRAGMA page_count").fetchone()[0] * page_size < megabytes * 1e6:
        for _ in range(50):
            conversations += 1
            conn.execute(
                "INSERT INTO conversations (title, created_at, updated_at) VALUES (?, ?, ?)",
                (f"Conversation {conversations}", now, now),
            )
            rows = []
            for position in range(MESSAGES_PER_CONVERSATION):
                words = rng.randint(10, 60) if position % 2 == 0 else rng.randint(150, 600)
                text = " ".join(rng.choice(WORDS) for _ in range(words))
                role = "user" if position % 2 == 0 else "assistant"
                rows.append(
                    (None, conversations, position, role, text, "[]", "complete", 0, now,
                     None, None, None, 0)
                )  # fmt: skip
            conn.executemany(INSERT_MESSAGE, rows)
            messages += len(rows)
        conn.execute("COMMIT")
        conn.execute("BEGIN")
    conn.execute("COMMIT")
    conn.close()  # the last connection: the WAL is checkpointed into the file
    return conversations, messages


def main() -> int:
    """Build the history and print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="size of the history")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the history here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "chats.sqlite3"
        if not path.exists():
            started = time.perf_counter()
            conversations, messages = build(path, args.mb)
            print(
                f"built {path.stat().st_size / 1e6:.1f} MB: {conversations} conversations, "
                f"{messages} messages in {time.perf_counter() - started:.1f} s"
            )
        checks, opens = [], []
        for _ in range(args.rounds):
            conn = sqlite3.connect(path)
            started = time.perf_counter()
            result = conn.execute("PRAGMA quick_check").fetchall()
            checks.append(time.perf_counter() - started)
            conn.close()
            assert result == [("ok",)], result
            started = time.perf_counter()
            ChatStore(path).close()
            opens.append(time.perf_counter() - started)
        print(f"sqlite {sqlite3.sqlite_version}, {path.stat().st_size / 1e6:.1f} MB history")
        print(f"PRAGMA quick_check: median {statistics.median(checks):.3f} s  {_all(checks)}")
        print(f"ChatStore open:     median {statistics.median(opens):.3f} s  {_all(opens)}")
    return 0


def _all(times: list[float]) -> str:
    return "(" + ", ".join(f"{t:.3f}" for t in times) + ")"


if __name__ == "__main__":
    sys.exit(main())
