"""Where Herd keeps its files; built once in ``__main__`` and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "Herd"


@dataclass(frozen=True, slots=True)
class AppPaths:
    """The folders Herd uses. ``ensure()`` creates them."""

    data: Path
    config: Path
    logs: Path
    cache: Path
    models: Path
    state: Path  # what Herd learned about this machine (the engine self-check)

    @classmethod
    def default(cls) -> AppPaths:
        """The platform's usual folders (XDG on Linux, ~/Library on macOS, AppData on Windows)."""
        data = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
        return cls(
            data=data,
            config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            logs=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
            cache=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
            models=data / "models",
            state=Path(platformdirs.user_state_dir(APP_NAME, appauthor=False)),
        )

    @classmethod
    def under(cls, root: Path) -> AppPaths:
        """Everything below one folder (tests, portable installs, ``HERD_HOME``)."""
        root = Path(root)
        return cls(
            data=root / "data",
            config=root / "config",
            logs=root / "logs",
            cache=root / "cache",
            models=root / "data" / "models",
            state=root / "state",
        )

    def ensure(self) -> AppPaths:
        """Create every folder that does not exist yet; returns self."""
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
    def hub_cache(self) -> Path:
        """Herd's Hugging Face cache (blobs, snapshots, refs), shared with other tools."""
        return self.models / "hub"

    @property
    def hub_headers(self) -> Path:
        """GGUF headers fetched to plan a quant before downloading it (sparse files)."""
        return self.cache / "gguf-headers"

    @property
    def library_index(self) -> Path:
        """The model library's own records: files the user added, when each was last used."""
        return self.data / "library.json"

    @property
    def hub_token_file(self) -> Path:
        """The Hugging Face token when no OS keyring is available (mode 0600)."""
        return self.config / "hf_token"

    @property
    def chats_db(self) -> Path:
        """The SQLite file with every conversation."""
        return self.data / "chats.sqlite3"
