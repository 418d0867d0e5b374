"""A small Hub-compatible HTTP server on 127.0.0.1 for the tests and the download benchmark.

It serves the routes huggingface_hub 2.x calls: model info with file metadata
(``/api/models/{repo}[/revision/{rev}]?blobs=True``), the file tree, search
(``/api/models?search=``), and ``HEAD``/``GET /{repo}/resolve/{rev}/{file}`` with ``ETag``,
``X-Repo-Commit``, ``Content-Length``, ``X-Linked-Size``/``X-Linked-Etag`` and HTTP Range.
Faults on demand: cut the connection after N bytes of a file, corrupt one byte, a gated
repository (401 without the token, 403 with a wrong one), a server that ignores Range.
What it serves (files, repositories) is :mod:`tests.hub.hub_repos`.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from tests.hub.hub_repos import COMMIT, HubFile, HubRepo, gguf_bytes

__all__ = ["COMMIT", "TOKEN", "FakeHub", "Faults", "HubFile", "HubRepo", "gguf_bytes"]

TOKEN = "hf_herd_test_token"


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
        self._baseline: dict[str, HubRepo] | None = None  # the repos every test starts with
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

    def keep_as_baseline(self) -> None:
        """The repos now served are the ones :meth:`reset` goes back to."""
        self._baseline = dict(self.repos)

    def reset(self) -> None:
        if self._baseline is not None:  # a repo one test added is not another test's
            self.repos = dict(self._baseline)
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
                "tags": r.tags,
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
                "downloads": repo.downloads,
                "likes": 0,
                "tags": repo.tags,
                "cardData": repo.card_data,
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
