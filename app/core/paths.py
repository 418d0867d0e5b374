"""Where Herd keeps its files, and where it finds models; built once in ``__main__``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "Herd"


@dataclass(frozen=True, slots=True)
class AppPaths:
    """The folders Herd uses. ``ensure()`` creates Herd's own (never other tools' ones)."""

    data: Path
    config: Path
    logs: Path
    cache: Path
    models: Path
    state: Path  # what Herd learned about this machine (the engine self-check)
    hub_cache: Path  # the Hugging Face cache (blobs, snapshots, refs) downloads go to
    lmstudio_home: Path | None = None  # LM Studio's folder; None: not looked at
    ollama_models: tuple[Path, ...] = ()  # Ollama's stores (manifests/, blobs/)

    @classmethod
    def default(
        cls, environ: Mapping[str, str] | None = None, home: Path | None = None
    ) -> AppPaths:
        """The platform's usual folders (XDG, ~/Library, AppData) and the shared model caches.

        ``environ`` (default: this process's) and ``home`` (default: the user's) are read
        here, once: ``HF_HUB_CACHE``/``HF_HOME`` and ``OLLAMA_MODELS``.
        """
        env = os.environ if environ is None else environ
        home = Path.home() if home is None else home
        data = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
        return cls(
            data=data,
            config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            logs=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
            cache=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
            models=data / "models",
            state=Path(platformdirs.user_state_dir(APP_NAME, appauthor=False)),
            hub_cache=hf_hub_cache(env, home),
            lmstudio_home=lmstudio_home(home),
            ollama_models=ollama_models(env, home),
        )

    @classmethod
    def under(cls, root: Path) -> AppPaths:
        """Everything below one folder (tests, portable installs, ``HERD_HOME``).

        Downloads stay below ``root`` too, and other apps' folders are not looked at.
        """
        root = Path(root)
        return cls(
            data=root / "data",
            config=root / "config",
            logs=root / "logs",
            cache=root / "cache",
            models=root / "data" / "models",
            state=root / "state",
            hub_cache=root / "data" / "models" / "hub",
        )

    def ensure(self) -> AppPaths:
        """Create every folder of Herd's own that does not exist yet; returns self."""
        for folder in (
            self.data,
            self.config,
            self.logs,
            self.cache,
            self.models,
            self.state,
            self.images,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def engine_log(self) -> Path:
        """llama.cpp's log, written by the engine process."""
        return self.logs / "engine.log"

    @property
    def images(self) -> Path:
        """Images attached to messages, each named by its sha256."""
        return self.data / "images"

    @property
    def downloads(self) -> Path:
        """Partial downloads that survive a restart (resumed with HTTP Range)."""
        return self.data / "downloads"

    @property
    def legacy_hub_cache(self) -> Path:
        """Where Herd downloaded before it used the standard cache: still listed, not written."""
        return self.models / "hub"

    @property
    def hub_headers(self) -> Path:
        """GGUF headers fetched to plan a quant before downloading it (sparse files)."""
        return self.cache / "gguf-headers"

    @property
    def library_index(self) -> Path:
        """The library's own records: files and folders the user added, when each was used."""
        return self.data / "library.json"

    @property
    def hub_token_file(self) -> Path:
        """The Hugging Face token when no OS keyring is available (mode 0600)."""
        return self.config / "hf_token"

    @property
    def chats_db(self) -> Path:
        """The SQLite file with every conversation."""
        return self.data / "chats.sqlite3"


def _expand(value: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(value)))


def hf_hub_cache(environ: Mapping[str, str], home: Path) -> Path:
    """The Hugging Face cache, resolved as huggingface_hub resolves it.

    ``HF_HUB_CACHE``, else the legacy ``HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``,
    else ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``
    (huggingface_hub's ``constants.py``; on Windows too).
    """
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if environ.get(name):
            return _expand(environ[name])
    if environ.get("HF_HOME"):
        return _expand(environ["HF_HOME"]) / "hub"
    xdg = environ.get("XDG_CACHE_HOME")
    return (_expand(xdg) if xdg else home / ".cache") / "huggingface" / "hub"


def lmstudio_home(home: Path) -> Path:
    """LM Studio's folder, found as LM Studio's own SDK finds it (lmstudio-js).

    The path in ``~/.lmstudio-home-pointer``, else ``~/.cache/lm-studio`` when it exists
    (older LM Studio), else ``~/.lmstudio``.
    """
    try:
        pointed = (home / ".lmstudio-home-pointer").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        pointed = ""
    if pointed:
        return Path(pointed)
    legacy = home / ".cache" / "lm-studio"
    return legacy if legacy.is_dir() else home / ".lmstudio"


def ollama_models(
    environ: Mapping[str, str], home: Path, platform: str = sys.platform
) -> tuple[Path, ...]:
    """Ollama's model stores: ``OLLAMA_MODELS``, else ``~/.ollama/models``.

    On Linux the service that Ollama's installer sets up runs as the user ``ollama``, whose
    store is ``/usr/share/ollama/.ollama/models`` (Ollama's FAQ); both are looked at.
    """
    if environ.get("OLLAMA_MODELS"):
        return (_expand(environ["OLLAMA_MODELS"]),)
    found = [home / ".ollama" / "models"]
    if platform.startswith("linux"):
        found.append(Path("/usr/share/ollama/.ollama/models"))
    return tuple(found)
