"""A disk that fills up during ``herd pull``: one line, exit 2, the queue file as it was.

The main test is real: ``herd pull`` runs against the local Hub server with its data folder
on a 1 MiB tmpfs, mounted in a private mount namespace (``unshare``: no root needed where
user namespaces are allowed; skipped where they are not). The test fills that file system
while the transfer is held, so the kernel itself answers ENOSPC to the download's writes and
then to the queue's save. The other tests fake ENOSPC where a real full disk says it last
(``fsync``), so the same promise is checked on every platform.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.__main__ import main
from app.core.hub import download as download_module
from app.core.hub import jobs as jobs_module
from app.core.hub import transfer
from app.core.hub.catalog import repo_quants
from app.core.hub.errors import DiskSpaceError, HubError
from app.core.hub.jobs import QUEUE_FILE, DownloadQueue, DownloadRequest, JobState

ROOT = Path(__file__).resolve().parents[2]
SCOUT = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF"
Q8 = "Llama-4-Scout-17B-16E-Instruct-Q8_0.gguf"

# In its own mount namespace: a 1 MiB tmpfs on the data folder, then `herd pull` once per
# line the test sends (the namespace, and so the tmpfs, lives until the last line).
SCRIPT = r"""
mount -t tmpfs -o size=1m herd-full "$HERD_HOME/data" || exit 97
echo mounted
for run in 1 2; do
    read -r go || exit 0
    "$HERD_PYTHON" -m app pull "$HERD_REPO" --quant Q8_0 --no-projector \
        </dev/null >"$HERD_OUT/out$run" 2>"$HERD_OUT/err$run"
    echo $? >"$HERD_OUT/rc$run"
done
read -r go
"""


def _wait_for(check, what: str, proc: subprocess.Popen, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert proc.poll() is None, f"the namespace ended early while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def _fill(path: Path) -> int:
    """Write ``path`` until the file system says ENOSPC; returns the bytes written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1):  # big blocks, then the last page's bytes
            block = b"\0" * size
            while True:
                try:
                    written += os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return written


@pytest.fixture
def namespace(hub, tmp_path):
    """The script above in a new user and mount namespace; skips where that is refused."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        pytest.skip("needs Linux's unshare for a private tmpfs")
    home, out = tmp_path / "home", tmp_path / "out"
    (home / "data").mkdir(parents=True)
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    env |= {
        "HERD_HOME": str(home),
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(tmp_path / "hf-home"),  # never the developer's token
        "HERD_PYTHON": sys.executable,
        "HERD_REPO": SCOUT,
        "HERD_OUT": str(out),
    }
    proc = subprocess.Popen(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", SCRIPT],
        cwd=ROOT, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        if proc.stdout.readline().strip() != "mounted":
            proc.wait(10)
            pytest.skip(f"cannot mount a tmpfs in a user namespace here: {proc.stderr.read()}")
        # the tmpfs as the test sees it, from outside the namespace
        yield proc, Path(f"/proc/{proc.pid}/root") / str(home / "data").lstrip("/"), out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_disk_full_during_pull_says_so_and_keeps_the_queue(hub, namespace):
    proc, data, out = namespace
    downloads = data / "downloads"
    hub.faults.stall = threading.Event()
    hub.faults.stall.set()  # the body stops after its first block
    try:
        proc.stdin.write("go\n")
        proc.stdin.flush()
        part = _wait_for(
            lambda: next((p for p in downloads.glob("*.part") if p.stat().st_size), None),
            "the first bytes of the download",
            proc,
        )
        assert _fill(data / "filler") > 0
        queue_before = (downloads / QUEUE_FILE).read_bytes()
        assert b'"running"' in queue_before
    finally:
        hub.faults.stall.clear()
    _wait_for(lambda: (out / "rc1").exists(), "the first `herd pull`", proc)

    err = (out / "err1").read_text()
    assert (out / "rc1").read_text().strip() == "2", err
    assert (out / "out1").read_text() == ""
    assert "Traceback" not in err and "Error:" not in err, err
    herd_lines = [ln for ln in err.splitlines() if ln.startswith("herd:")]
    assert len(herd_lines) == 1 and herd_lines == err.strip().splitlines()[-1:], err
    assert "disk filled up" in herd_lines[0] and "Free " in herd_lines[0], err
    assert "resume" in herd_lines[0]
    assert (downloads / QUEUE_FILE).read_bytes() == queue_before  # not emptied, not half
    assert sorted(p.name for p in downloads.iterdir()) == sorted([QUEUE_FILE, part.name])
    kept = part.stat().st_size
    assert kept > 0

    (data / "filler").unlink()  # space again: the same command resumes and finishes
    proc.stdin.write("go\n")
    proc.stdin.flush()
    _wait_for(lambda: (out / "rc2").exists(), "the second `herd pull`", proc)
    assert (out / "rc2").read_text().strip() == "0", (out / "err2").read_text()
    path = Path((out / "out2").read_text().strip())
    assert path.name == Q8
    inside = Path(f"/proc/{proc.pid}/root") / str(path).lstrip("/")
    assert hashlib.sha256(inside.read_bytes()).hexdigest() == hub.repos[SCOUT].files[Q8].sha256
    assert [r for n, r in hub.ranges if n == Q8][-1] == f"bytes={kept}-"  # resumed, not redone
    assert b'"done"' in (downloads / QUEUE_FILE).read_bytes()
    proc.stdin.write("go\n")
    proc.stdin.flush()


# --- the same promises without a real full disk (every platform) ----------------------


def _no_space(*_args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _queue_with_one(tmp_path: Path) -> tuple[DownloadQueue, str]:
    queue = DownloadQueue(tmp_path / "downloads")
    request = DownloadRequest("owner/name-GGUF", "main", (), quant="Q4_K_M")
    queue.entries.append(jobs_module.QueueEntry(request))
    queue.save()
    return queue, request.key


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_a_failed_save_keeps_the_old_queue_and_leaves_no_temporary_file(
    tmp_path, monkeypatch, where
):
    queue, key = _queue_with_one(tmp_path)
    before = (queue.folder / QUEUE_FILE).read_bytes()
    if where == "write":
        real_fdopen = os.fdopen

        def fdopen(fd, *args, **kwargs):
            handle = real_fdopen(fd, *args, **kwargs)
            handle.write = _no_space
            return handle

        monkeypatch.setattr(transfer.os, "fdopen", fdopen)
    else:
        monkeypatch.setattr(transfer.os, where, _no_space)
    with pytest.raises(DiskSpaceError) as err:
        queue.update(key, JobState.FAILED, "stopped")
    monkeypatch.undo()
    assert err.value.user_message.startswith("The disk is full: Herd cannot save")
    assert "Free some space" in err.value.hint
    assert (queue.folder / QUEUE_FILE).read_bytes() == before
    assert os.listdir(queue.folder) == [QUEUE_FILE]
    assert DownloadQueue.load(queue.folder).get(key).state is JobState.QUEUED


def test_another_write_error_is_said_too(tmp_path, monkeypatch):
    queue, key = _queue_with_one(tmp_path)

    def read_only(*_args: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(transfer.os, "fsync", read_only)
    with pytest.raises(HubError, match="cannot save the download queue .*Read-only") as err:
        queue.remove(key)
    assert not isinstance(err.value, DiskSpaceError)
    assert os.listdir(queue.folder) == [QUEUE_FILE]


@pytest.fixture
def herd_env(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HERD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "home" / "data" / "downloads"


def test_pull_when_the_queue_cannot_be_saved_after_a_full_disk(herd_env, monkeypatch, capsys):
    real_write = jobs_module.write_atomic
    saves = []

    def write_atomic(path, text):
        saves.append(text)
        if len(saves) > 2:  # queued, running; then the disk is full
            _no_space()
        real_write(path, text)

    monkeypatch.setattr(jobs_module, "write_atomic", write_atomic)
    monkeypatch.setattr(download_module.hub_cache, "store", _no_space)
    assert main(["pull", SCOUT, "--quant", "Q8_0", "--no-projector"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines[-1].startswith("herd: The disk filled up") and "Traceback" not in captured.err
    assert sum(ln.startswith("herd:") for ln in lines) == 1 and captured.out == ""
    assert (herd_env / QUEUE_FILE).read_text() == saves[1]  # the last save that worked
    assert not list(herd_env.glob("*.tmp"))


def test_pull_on_a_disk_already_full_fails_before_a_byte(hub, herd_env, monkeypatch, capsys):
    monkeypatch.setattr(jobs_module, "write_atomic", _no_space)
    assert main(["pull", SCOUT, "--quant", "Q8_0", "--no-projector"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[-1]] and err[-1].startswith("herd: The disk is full:")
    assert hub.sent == {}


def test_the_message_names_how_much_to_free(hub, client, paths, downloader, monkeypatch):
    quants = repo_quants(client, paths.hub_cache, SCOUT)
    request = DownloadRequest.for_quant(quants, quants.find("Q8_0"), projector=False)
    real_write_all = download_module.write_all
    done = []

    def write_all(fd, block):
        if sum(done) >= 100_000:
            _no_space()
        done.append(len(block))
        real_write_all(fd, block)

    monkeypatch.setattr(download_module, "write_all", write_all)
    last = list(downloader.run(request, jobs_module.DownloadControl()))[-1]
    assert last.error == "DiskSpaceError" and "disk filled up" in last.message
    left = hub.repos[SCOUT].files[Q8].size - sum(done)
    assert f"it needs {download_module.fmt_size(left)} more" in last.message
    assert last.hint.startswith(f"Free {download_module.fmt_size(left)} or more")
