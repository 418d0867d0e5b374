"""Herd's downloader against curl, on one generated file served by the local test Hub.

    python bench/download_throughput.py [--size 2GB] [--rounds 2] [--link 125MB]

The file is served by ``tests/hub/hub_server.py`` on 127.0.0.1 (sendfile, HTTP Range). Herd
fetches it through huggingface_hub's metadata and session, writes it to a partial file,
hashes it while writing, checks the sha256 and moves it into a Hugging Face cache; curl
writes to /dev/null. Rounds alternate (curl, Herd, curl, Herd ...) and the best of each is
compared: ratio = Herd's MB/s / curl's MB/s (target >= 0.9).

Two settings: the loopback at full speed (the CPU cost of each side: there curl wins,
since Herd hashes every byte and httpx parses in Python), and the server paced like a
network link of ``--link`` bytes per second (default 125 MB/s, a 1 Gbit/s line; 0 skips
it), which is what a download from the Hub is limited by.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.hardware import parse_size  # noqa: E402
from app.core.hub.client import HubClient, HubConfig, RemoteFile  # noqa: E402
from app.core.hub.download import Downloader  # noqa: E402
from app.core.hub.jobs import DownloadControl, DownloadDone, DownloadRequest  # noqa: E402
from tests.hub.hub_server import FakeHub, HubFile, HubRepo  # noqa: E402

REPO = "bench/Throughput-GGUF"
NAME = "bench-Q4_K_M.gguf"


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(64 << 20)
    with path.open("wb") as fh:
        left = size
        while left > 0:
            n = min(left, len(block))
            fh.write(block[:n])
            left -= n


def _curl(url: str) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", "/dev/null", url], check=True)
    return time.perf_counter() - start


def _herd(hub: FakeHub, work: Path, f: HubFile) -> float:
    cache, downloads = work / "hub", work / "downloads"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(downloads, ignore_errors=True)
    client = HubClient(HubConfig(endpoint=hub.endpoint, token=False))
    request = DownloadRequest(REPO, "main", (RemoteFile(NAME, f.size, f.sha256),), quant="Q4_K_M")
    start = time.perf_counter()
    events = list(Downloader(client, downloads, cache).run(request, DownloadControl()))
    elapsed = time.perf_counter() - start
    if not isinstance(events[-1], DownloadDone):
        raise SystemExit(f"Herd's download failed: {events[-1]}")
    shutil.rmtree(cache, ignore_errors=True)
    return elapsed


def main() -> int:
    """Run the benchmark and print one figure line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2GB", help="file size, e.g. 2GB or 512MB")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--link", default="125MB", help="paced run's bytes/s (0: skip it)")
    args = parser.parse_args()
    size = parse_size(args.size)
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed")
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp:
        work = Path(tmp)
        source = work / "served.gguf"
        _make_file(source, size)
        f = HubFile(NAME, path=source)
        link = parse_size(args.link) if args.link not in ("0", "") else 0
        with FakeHub() as hub:
            hub.add(HubRepo(REPO, {NAME: f}))
            url = f"{hub.endpoint}/{REPO}/resolve/main/{NAME}"
            for rate in (None, link or None) if link else (None,):
                hub.rate_bps = rate
                curl_s, herd_s = [], []
                for _ in range(args.rounds):
                    curl_s.append(_curl(url))
                    herd_s.append(_herd(hub, work, f))
                _report(size, args.rounds, rate, min(curl_s), min(herd_s))
    return 0


def _report(size: int, rounds: int, rate: float | None, curl_s: float, herd_s: float) -> None:
    mb = size / 1e6
    curl_mbs, herd_mbs = mb / curl_s, mb / herd_s
    where = f"link={rate / 1e6:.0f}MB/s" if rate else "link=loopback(unpaced)"
    print(  # noqa: T201
        f"download_throughput size={size / 1e9:.2f}GB rounds={rounds} {where} "
        f"curl={curl_mbs:.0f}MB/s herd={herd_mbs:.0f}MB/s ratio={herd_mbs / curl_mbs:.2f} "
        "(target >= 0.9; herd writes to disk + sha256, curl writes to /dev/null)"
    )


if __name__ == "__main__":
    sys.exit(main())
