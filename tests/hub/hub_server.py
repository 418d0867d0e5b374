"""A small Hub-compatible HTTP server on 127.0.0.1 for the tests and the download benchmark.

It serves the routes huggingface_hub 2.x calls: model info with file metadata
(``/api/models/{repo}[/revision/{rev}]?blobs=True``), the file tree, search
(``/api/models?search=``), and ``HEAD``/``GET /{repo}/resolve/{rev}/{file}`` with ``ETag``,
``X-Repo-Commit``, ``Content-Length``, ``X-Linked-Size``/``X-Linked-Etag`` and HTTP Range.
Faults on demand: cut the connection after N bytes of a file, corrupt one byte, a gated
repository (401 without the token, 403 with a wrong one), a server that ignores Range.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "hf_herd_test_token"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def gguf_bytes(size: int, seed: int) -> bytes:
    """``size`` bytes that start like a GGUF (magic, version 3, no tensors) then noise."""
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    return head + random.Random(seed).randbytes(max(size - len(head), 0))


@dataclass
class HubFile:
    """One file of a repository: in memory, or on disk (big benchmark files)."""

    name: str
    data: bytes | None = None
    path: Path | None = None
    lfs: bool = True
    sha256: str = ""
    size: int = 0
    listed_size: int | None = None  # what model info advertises (screenshots of big repos)

    def __post_init__(self) -> None:
        if self.data is not None:
            self.size = len(self.data)
            self.sha256 = self.sha256 or hashlib.sha256(self.data).hexdigest()
        elif self.path is not None:
            self.size = self.path.stat().st_size
            if not self.sha256:
                h = hashlib.sha256()
                with self.path.open("rb") as fh:
                    while block := fh.read(1 << 22):
                        h.update(block)
                self.sha256 = h.hexdigest()

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(self.name.encode()).hexdigest()


@dataclass
class HubRepo:
    """A model repository at one commit."""

    repo_id: str
    files: dict[str, HubFile]
    commit: str = COMMIT
    gated: bool = False
    downloads: int = 0


@dataclass
class Faults:
    """What goes wrong next; cuts are one-shot, corruption and ignoring Range stay."""

    cut_after: dict[str, int] = field(default_factory=dict)  # file name -> absolute offset
    corrupt_at: dict[str, int] = field(default_factory=dict)  # file name -> offset flipped
    ignore_range: bool = False
    stall: threading.Event | None = None  # set: bodies stop after the first chunk until cleared
    cdn: bool = False  # resolve answers 302 to a signed "CDN" address on another host name
    expired_cdn: int = 0  # this many CDN GETs answer 403 (an expired signature)


class FakeHub:
    """The server: ``with FakeHub() as hub: ... hub.endpoint``."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.faults = Faults()
        self.rate_bps: float | None = None  # pace file bodies (sendfile path) like a link
        self.sent: dict[str, int] = {}  # body bytes sent per file name
        self.ranges: list[tuple[str, str]] = []  # (file name, Range header) of each GET
        self.signatures = 0  # signed CDN addresses handed out
        self.cdn_saw_token = False  # the CDN must never see the token
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add(self, repo: HubRepo) -> HubRepo:
        self.repos[repo.repo_id] = repo
        return repo

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        self.faults = Faults()
        self.sent.clear()
        self.ranges.clear()
        self.signatures = 0
        self.cdn_saw_token = False


_CDN = re.compile(r"^/cdn/(?P<repo>[^/]+/[^/]+)/(?P<file>.+)$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/]+))?$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")


class _Handler(BaseHTTPRequestHandler):
    server_hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    # --- plumbing ---------------------------------------------------------------------

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        headers.setdefault("Content-Length", str(len(body)))
        headers["Connection"] = "close"  # no idle keep-alive threads left behind
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def _json(self, data: object, status: int = 200) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(data).encode())

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"X-Error-Code": code, "X-Error-Message": message}, message.encode())

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def _route(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        hub = self.server_hub
        if path == "/api/models":
            return self._search(query)
        if m := _TREE.match(path):
            return self._tree(m["repo"], m["path"] or "")
        if m := _INFO.match(path):
            return self._info(m["repo"], "blobs" in query)
        if m := _CDN.match(path):
            return self._cdn(m["repo"], m["file"])
        if m := _RESOLVE.match(path):
            repo = hub.repos.get(m["repo"])
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            if repo.gated and not self._authorised():
                return self._gated(repo)
            f = repo.files.get(m["file"])
            if f is None:
                return self._error(404, "EntryNotFound", "Entry not found")
            if hub.faults.cdn and f.lfs:
                return self._redirect(repo, f)
            return self._file(repo, f)
        return self._error(404, "RepoNotFound", "Not found")

    def _redirect(self, repo: HubRepo, f: HubFile) -> None:
        hub = self.server_hub
        with hub.lock:
            hub.signatures += 1
            sig = hub.signatures
        port = self.server.server_address[1]
        etag = f'"{f.sha256}"'
        headers = {
            "Location": f"http://localhost:{port}/cdn/{repo.repo_id}/{f.name}?sig={sig}",
            "X-Repo-Commit": repo.commit,
            "ETag": etag,
            "X-Linked-Etag": etag,
            "X-Linked-Size": str(f.size),
        }
        self._send(302, headers)

    def _cdn(self, repo_id: str, name: str) -> None:
        hub = self.server_hub
        repo = hub.repos.get(repo_id)
        f = repo.files.get(name) if repo else None
        if repo is None or f is None:
            return self._send(404, {}, b"NoSuchKey")
        with hub.lock:
            if self.headers.get("Authorization"):
                hub.cdn_saw_token = True
            expired = self.command == "GET" and hub.faults.expired_cdn > 0
            if expired:
                hub.faults.expired_cdn -= 1
        if expired:
            return self._send(403, {"Content-Type": "text/plain"}, b"Request has expired")
        return self._file(repo, f)

    def _authorised(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {TOKEN}"

    def _gated(self, repo: HubRepo) -> None:
        if self.headers.get("Authorization"):
            return self._error(403, "GatedRepo", f"Access to model {repo.repo_id} is restricted.")
        return self._error(
            401, "GatedRepo", f"Access to model {repo.repo_id} is restricted. Please log in."
        )

    # --- API --------------------------------------------------------------------------

    def _search(self, query: dict[str, list[str]]) -> None:
        text = (query.get("search") or [""])[0].lower()
        hits = [
            {
                "id": r.repo_id,
                "downloads": r.downloads,
                "likes": 0,
                "gated": "manual" if r.gated else False,
                "tags": ["gguf"],
            }
            for r in self.server_hub.repos.values()
            if text in r.repo_id.lower()
        ]
        self._json(hits)

    def _info(self, repo_id: str, blobs: bool) -> None:
        repo = self.server_hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        siblings = []
        for f in repo.files.values():
            entry: dict[str, object] = {"rfilename": f.name}
            if blobs:
                size = f.listed_size or f.size
                entry |= {"size": size if not f.lfs else 135, "blobId": f.git_oid}
                if f.lfs:
                    entry["lfs"] = {"sha256": f.sha256, "size": size, "pointerSize": 135}
            siblings.append(entry)
        self._json(
            {
                "id": repo.repo_id,
                "sha": repo.commit,
                "gated": "manual" if repo.gated else False,
                "private": False,
                "tags": ["gguf"],
                "siblings": siblings,
            }
        )

    def _tree(self, repo_id: str, prefix: str) -> None:
        repo = self.server_hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        items = [
            {
                "type": "file",
                "oid": f.git_oid,
                "size": f.size,
                "path": f.name,
                **({"lfs": {"oid": f.sha256, "size": f.size, "pointerSize": 135}} if f.lfs else {}),
            }
            for f in repo.files.values()
            if f.name.startswith(prefix)
        ]
        self._json(items)

    # --- files ------------------------------------------------------------------------

    def _file(self, repo: HubRepo, f: HubFile) -> None:
        hub = self.server_hub
        etag = f'"{f.sha256}"' if f.lfs else f'"{f.git_oid}"'
        headers = {
            "ETag": etag,
            "X-Repo-Commit": repo.commit,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if f.lfs:
            headers |= {"X-Linked-Etag": etag, "X-Linked-Size": str(f.size)}
        start = 0
        rng = self.headers.get("Range", "")
        if self.command == "GET":
            with hub.lock:
                hub.ranges.append((f.name, rng))
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
        status = 200
        stop = f.size  # exclusive
        if m and not hub.faults.ignore_range:
            start = int(m[1])
            stop = min(int(m[2]) + 1, f.size) if m[2] else f.size
            if start >= f.size or stop <= start:
                headers["Content-Range"] = f"bytes */{f.size}"
                return self._send(416, headers)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{f.size}"
        headers["Content-Length"] = str(stop - start)
        if self.command == "HEAD":
            return self._send(status, headers)
        self.send_response(status)
        headers["Connection"] = "close"
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True
        with hub.lock:
            cut = hub.faults.cut_after.pop(f.name, None)
        end = stop if cut is None or cut < start else min(cut, stop)
        self._body(f, start, end)
        if cut is not None and end < stop:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _body(self, f: HubFile, start: int, end: int) -> None:
        hub = self.server_hub
        corrupt = hub.faults.corrupt_at.get(f.name)
        stall = hub.faults.stall
        pos = start
        step = 1 << 16
        try:
            if f.path is not None and corrupt is None and stall is None:
                self.wfile.flush()
                rate, began = hub.rate_bps, time.perf_counter()
                with f.path.open("rb") as fh:
                    while pos < end:
                        if rate:  # pace like a network link of `rate` bytes per second
                            ahead = began + (pos - start) / rate - time.perf_counter()
                            if ahead > 0:
                                time.sleep(ahead)
                        count = min(end - pos, 1 << 20) if rate else end - pos
                        n = self.connection.sendfile(fh, pos, count)
                        if not n:
                            break
                        pos += n
                        with hub.lock:
                            hub.sent[f.name] = hub.sent.get(f.name, 0) + n
                return
            data = memoryview(f.data if f.data is not None else f.path.read_bytes())  # type: ignore[union-attr]
            while pos < end:
                block = bytes(data[pos : min(pos + step, end)])
                if corrupt is not None and pos <= corrupt < pos + len(block):
                    i = corrupt - pos
                    block = block[:i] + bytes([block[i] ^ 0xFF]) + block[i + 1 :]
                self.wfile.write(block)
                pos += len(block)
                with hub.lock:
                    hub.sent[f.name] = hub.sent.get(f.name, 0) + len(block)
                if stall is not None:
                    while stall.is_set():
                        time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass


def scout_repo(repo_id: str = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF") -> HubRepo:
    """A repository with a split Q4_K_M, a single-file Q8_0, a projector and a README."""
    stem = "Llama-4-Scout-17B-16E-Instruct"
    files = [
        HubFile(f"Q4_K_M/{stem}-Q4_K_M-00001-of-00002.gguf", gguf_bytes(300_000, 1)),
        HubFile(f"Q4_K_M/{stem}-Q4_K_M-00002-of-00002.gguf", random.Random(2).randbytes(200_000)),
        HubFile(f"{stem}-Q8_0.gguf", gguf_bytes(640_000, 3)),
        HubFile("mmproj-F16.gguf", gguf_bytes(50_000, 4)),
        HubFile("README.md", b"# tiny test repo\n", lfs=False),
    ]
    return HubRepo(repo_id, {f.name: f for f in files}, downloads=10)


def gated_repo(repo_id: str = "herd-test/Gated-Llama-4-GGUF") -> HubRepo:
    """A gated repository with one small model file."""
    f = HubFile("Gated-Q4_K_M.gguf", gguf_bytes(40_000, 5))
    return HubRepo(repo_id, {f.name: f}, gated=True, commit="f" * 40)


def showcase_repo(
    repo_id: str = "unsloth/Llama-4-Scout-17B-16E-Instruct-GGUF", real_q4: Path | None = None
) -> HubRepo:
    """A repository that lists Scout-sized quants (about the real sizes; tiny bodies).

    With ``real_q4`` (a header-only real-layout GGUF) its Q4_K_M is that file, so the
    planner can judge it from its headers.
    """
    stem = "Llama-4-Scout-17B-16E-Instruct"
    gb = 1_000_000_000
    sizes = {
        "UD-IQ1_S": 29.6,
        "UD-IQ2_XXS": 35.8,
        "UD-Q2_K_XL": 42.2,
        "UD-Q3_K_XL": 49.0,
        "Q4_K_M": 65.4,
        "UD-Q4_K_XL": 60.7,
        "Q5_K_M": 76.5,
        "Q6_K": 88.4,
        "Q8_0": 114.5,
    }
    files = []
    for i, (quant, size) in enumerate(sizes.items()):
        parts = max(1, int(size // 49) + 1) if size > 50 else 1
        for p in range(1, parts + 1):
            name = f"{quant}/{stem}-{quant}" + (f"-{p:05d}-of-{parts:05d}" if parts > 1 else "")
            files.append(
                HubFile(
                    f"{name}.gguf", gguf_bytes(64, i * 10 + p), listed_size=int(size * gb / parts)
                )
            )
    if real_q4 is not None:
        files = [f for f in files if "/Q4_K_M/" not in f"/{f.name}"]
        files.append(HubFile(f"Q4_K_M/{stem}-Q4_K_M.gguf", path=real_q4, sha256="ab" * 32))
    files.append(HubFile("mmproj-F16.gguf", gguf_bytes(64, 99), listed_size=int(1.75 * gb)))
    return HubRepo(repo_id, {f.name: f for f in files}, downloads=48_213)
