"""On the default path (no ``HERD_HOME``): models a person already has are in the library.

A home folder with LM Studio's and Ollama's recorded layouts; ``herd pull`` downloads into
``~/.cache/huggingface/hub`` and ``herd models`` lists all of them, Ollama's by name.
Linux only: the default folders come from ``HOME`` there (XDG), so the test stays in its
temporary folder.
"""

from __future__ import annotations

import json
import sys

import pytest

from app.__main__ import main
from tests.hub.layouts import build_lmstudio, build_ollama

SCOUT = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF"


@pytest.mark.skipif(sys.platform != "linux", reason="default folders follow HOME on Linux")
def test_models_people_already_have_are_found_by_default(
    hub, tmp_path, tiny_scout, monkeypatch, capsys
):
    home = build_lmstudio(tmp_path / "machine", tiny_scout)
    build_ollama(home / ".ollama" / "models", tiny_scout)
    monkeypatch.setenv("HOME", str(home))
    for name in ("HERD_HOME", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_MODELS", str(home / ".ollama" / "models"))  # not the system's
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")

    assert main(["pull", SCOUT, "--quant", "Q8_0", "--no-projector"]) == 0
    pulled = capsys.readouterr().out.strip()
    standard = home / ".cache" / "huggingface" / "hub"  # huggingface_hub's default
    assert pulled.startswith(f"{standard}/models--herd-test--Llama-4-Scout-17B-16E-Instruct-GGUF/")

    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_path = {row["path"]: row for row in rows}
    assert by_path[pulled]["quant"] == "Q8_0"  # the download, in the library
    by_name = {row["name"]: row for row in rows if row["path"] != pulled}
    assert by_name["llama4:scout"]["quant"] == "Q4_K_M"  # Ollama's, by its name
    assert by_name["llama4:scout"]["projector"] is not None
    assert by_name["Llama-4-Scout-17B-16E-Instruct-Q4_K_M"]["parts"] == 2  # LM Studio's
    assert "Llama-4-Scout-17B-16E-Instruct-Q8_0" in by_name  # in LM Studio's moved folder
    assert not any(row["name"].startswith("sha256") for row in rows)
