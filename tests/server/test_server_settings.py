"""The window's local-server settings: off by default, saved, forgiving, the key never logged."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.core.settings import SERVER_HOST, SERVER_PORT, Settings


def test_off_on_this_computer_by_default_and_in_older_files() -> None:
    for settings in (Settings(), Settings.from_dict({"version": 2, "theme": "dark"})):
        assert not settings.server_enabled
        assert (settings.server_host, settings.server_port) == ("127.0.0.1", 8080)
        assert settings.server_api_key == ""
    assert (SERVER_HOST, SERVER_PORT) == ("127.0.0.1", 8080)


def test_saved_and_read_back(tmp_path: Path) -> None:
    chosen = Settings(
        server_enabled=True, server_host="0.0.0.0", server_port=0, server_api_key="k-123"
    )
    chosen.save_to(tmp_path / "settings.json")
    assert Settings.load_from(tmp_path / "settings.json") == chosen


def test_unusable_values_fall_back_and_the_key_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings.from_dict(
        {"server_enabled": "yes", "server_port": 70000, "server_host": "  ", "server_api_key": 42}
    )
    assert not settings.server_enabled
    assert settings.server_port == SERVER_PORT and settings.server_host == SERVER_HOST
    assert settings.server_api_key == ""
    secret = Settings.from_dict({"server_api_key": " s3cret-key "})
    assert secret.server_api_key == "s3cret-key"
    assert "s3cret" not in repr(secret) and "s3cret" not in caplog.text
    assert "42" not in caplog.text
