"""Herd's downloader against curl, on one generated file served by the local test Hub.

    python bench/download_throughput.py [--size 2GB] [--rounds 2] [--link 125MB]

The file is served by ``tests/hub/hub_server.py`` on 127.0.0.1 (sendfile, HTTP Range), in a
process of its own: in Herd's process its thread would share Herd's GIL, which curl's server
does not. Herd fetches it through huggingface_hub's metadata and session, writes it to a
partial file, hashes it while writing, checks the sha256 and moves it into a Hugging Face
cache; curl writes to /dev/null (``curl>file``: curl writing the same disk, for reference).
The file is written just before, so it is in the page cache for both. Rounds alternate
(curl, Herd, curl, Herd ...) and the best of each is compared: ratio = Herd's MB/s / curl's
MB/s (target >= 0.9).

Two settings: the loopback at full speed (the CPU cost of each side: there curl wins,
since Herd hashes every byte and httpx parses in Python), and the server paced like a
network link of ``--link`` bytes per second (default 125 MB/s, a 1 Gbit/s line; 0 skips
it), which is what a download from the Hub is limited by.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.hardware.spec import parse_size  # noqa: E402
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
        fh.flush()
        os.fsync(fh.fileno())  # else its writeback competes with the timed runs for the CPU


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _serve(path: Path, sha256: str, rate: float | None) -> None:
    """The server process: print the endpoint, serve until stdin closes."""
    with FakeHub() as hub:
        hub.add(HubRepo(REPO, {NAME: HubFile(NAME, path=path, sha256=sha256)}))
        hub.rate_bps = rate
        print(hub.endpoint, flush=True)  # noqa: T201
        sys.stdin.read()


class _Server:
    """``_serve`` in a child process (``with _Server(...) as endpoint``)."""

    def __init__(self, path: Path, sha256: str, rate: float | None) -> None:
        self.args = [str(path), sha256, str(int(rate or 0))]

    def __enter__(self) -> str:
        cmd = [sys.executable, __file__, "--serve", *self.args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def _settle() -> None:
    """Let the disk finish writing what earlier runs left, so it does not slow the next."""
    if hasattr(os, "sync"):
        os.sync()


def _curl(url: str, out: str = "/dev/null") -> float:
    _settle()
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", out, url], check=True)
    elapsed = time.perf_counter() - start
    if out != "/dev/null":
        Path(out).unlink()
    return elapsed


def _herd(endpoint: str, work: Path, f: HubFile) -> float:
    cache, downloads = work / "hub", work / "downloads"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(downloads, ignore_errors=True)
    client = HubClient(HubConfig(endpoint=endpoint, token=False))
    request = DownloadRequest(REPO, "main", (RemoteFile(NAME, f.size, f.sha256),), quant="Q4_K_M")
    _settle()
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
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args()
    if args.serve:
        path, sha, rate = args.serve
        _serve(Path(path), sha, float(rate) or None)
        return 0
    size = parse_size(args.size)
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed")
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp:
        work = Path(tmp)
        source = work / "served.gguf"
        _make_file(source, size)
        f = HubFile(NAME, path=source, sha256=_sha256(source))
        link = parse_size(args.link) if args.link not in ("0", "") else 0
        for rate in (None, link) if link else (None,):
            with _Server(source, f.sha256, rate) as endpoint:
                url = f"{endpoint}/{REPO}/resolve/main/{NAME}"
                curl_s, file_s, herd_s = [], [], []
                for _ in range(args.rounds):
                    curl_s.append(_curl(url))
                    file_s.append(_curl(url, str(work / "curl.out")))
                    herd_s.append(_herd(endpoint, work, f))
            _report(size, args.rounds, rate, min(curl_s), min(file_s), min(herd_s))
    return 0


def _report(
    size: int, rounds: int, rate: float | None, curl_s: float, file_s: float, herd_s: float
) -> None:
    mb = size / 1e6
    curl_mbs, herd_mbs = mb / curl_s, mb / herd_s
    where = f"link={rate / 1e6:.0f}MB/s" if rate else "link=loopback(unpaced)"
    print(  # noqa: T201
        f"download_throughput size={size / 1e9:.2f}GB rounds={rounds} {where} "
        f"curl={curl_mbs:.0f}MB/s herd={herd_mbs:.0f}MB/s ratio={herd_mbs / curl_mbs:.2f} "
        f"curl>file={mb / file_s:.0f}MB/s "
        "(target >= 0.9; herd writes to disk + sha256, curl writes to /dev/null)"
    )


if __name__ == "__main__":
    sys.exit(main())
