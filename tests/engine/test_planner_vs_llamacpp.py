"""The planner's byte projections against llama.cpp's own figures (llama-cpp-python 0.3.36).

Two sources of truth, both read from llama.cpp's log through ``llama_log_set``:

* real CPU loads of the tiny Llama 4 test models (and the demo models), through
  ``HerdLlama`` with ``swa_full=False`` as the engine loads them;
* llama.cpp's load simulation (``no_alloc`` with ``load_mode`` NONE) on header-only GGUFs
  with the real Scout and Maverick layouts: it allocates nothing and reads no weights, but
  prints the real KV cache and compute buffer sizes (the weight buffers read 0.00 MiB
  there, so weights are checked with ``llama_model_size``).

llama.cpp runs in child processes (:mod:`tests.engine.child`), one per group of loads, with
this machine's engine configuration; the tests check the figures they bring back.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.engine.engine_config import EngineConfig
from app.core.gguf.info import read_gguf
from app.core.hardware.probe import Hardware
from app.core.plan.kv_estimate import compute_buffer_bytes, kv_cache, model_shape
from app.core.plan.planner import Plan, Wishes, make_plan
from tests.engine.child import Lazy, herd_llama, run_in_child
from tests.fixtures import real_layouts

MiB, GiB = 1 << 20, 1 << 30
# A machine with room for anything: the plan is CPU-only, like the loads below.
BIG_CPU = Hardware((), 4096 * GiB, 4096 * GiB, 8)


@dataclass(frozen=True)
class Figures:
    """What llama.cpp reported for one load."""

    model_size: int  # llama_model_size: bytes of all weight tensors
    model_buffers: float  # MiB over the "model buffer size" lines (0 under no_alloc)
    kv: list[tuple[float, int, int]]  # per cache: (MiB, cells, layers)
    compute: float  # MiB over the "compute buffer size" lines

    @property
    def kv_mib(self) -> float:
        return sum(m for m, _, _ in self.kv)


# -- in a child ----------------------------------------------------------------------------
@contextlib.contextmanager
def _llama_log() -> Iterator[list[str]]:
    import llama_cpp
    import llama_cpp._logger as llama_logger

    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def _collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(_collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(llama_logger.llama_log_callback, ctypes.c_void_p(0))


def _parse(text: str, model_size: int) -> Figures:
    kv = [
        (float(m), int(c), int(n))
        for m, c, n in re.findall(
            r"llama_kv_cache: size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers", text
        )
    ]
    buffers = sum(float(m) for m in re.findall(r"model buffer size = +([\d.]+) MiB", text))
    compute = re.findall(r"\S+ compute buffer size = +([\d.]+) MiB", text)
    assert compute, text[-3000:]
    return Figures(model_size, buffers, kv, sum(float(m) for m in compute))


def _load(config: EngineConfig, path: Path, n_ctx: int, n_ubatch: int = 512) -> Figures:
    """Load for real on the CPU the way the engine does (swa_full off, flash attention on)."""
    import llama_cpp

    with _llama_log() as lines:
        llm = herd_llama(
            config, path, n_ctx=n_ctx, n_batch=max(n_ubatch, 512), n_ubatch=n_ubatch,
            n_gpu_layers=0, swa_full=False, flash_attn=True, n_threads=1, verbose=True,
        )  # fmt: skip
        try:
            size = llama_cpp.llama_model_size(llm.model)
        finally:
            llm.close()
    return _parse("".join(lines), size)


def _simulate(
    config: EngineConfig, path: Path, n_ctx: int, n_ubatch: int = 512, swa_full: bool = False
) -> Figures:
    """llama.cpp's load simulation: buffer sizes without allocating or reading weights."""
    import llama_cpp

    with _llama_log() as lines:
        mp = llama_cpp.llama_model_default_params()
        mp.n_gpu_layers = 0
        mp.use_extra_bufts = config.use_extra_bufts  # as the engine loads on this machine
        mp.no_alloc = True
        mp.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE  # no_alloc aborts with mmap
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), mp)
        assert model, "".join(lines)[-3000:]
        try:
            cp = llama_cpp.llama_context_default_params()
            cp.n_ctx, cp.n_batch, cp.n_ubatch = n_ctx, max(n_ubatch, 512), n_ubatch
            cp.swa_full, cp.n_seq_max = swa_full, 1
            cp.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            ctx = llama_cpp.llama_init_from_model(model, cp)
            assert ctx, "".join(lines)[-3000:]
            llama_cpp.llama_free(ctx)
            size = llama_cpp.llama_model_size(model)
        finally:
            llama_cpp.llama_model_free(model)
    return _parse("".join(lines), size)


def _loads(config: EngineConfig, cases: list[tuple[Path, int, int]]) -> list[Figures]:
    """:func:`_load` for each (path, n_ctx, n_ubatch), in one child."""
    return [_load(config, path, n_ctx, n_ubatch) for path, n_ctx, n_ubatch in cases]


def _simulations(config: EngineConfig, cases: list[tuple[Path, int, int, bool]]) -> list[Figures]:
    """:func:`_simulate` for each (path, n_ctx, n_ubatch, swa_full), in one child."""
    return [_simulate(config, *case) for case in cases]


# -- the checks ----------------------------------------------------------------------------
def _cpu_plan(path_or_info: Path, n_ctx: int, n_ubatch: int) -> tuple[Plan, int]:
    info = read_gguf(path_or_info)
    plan = make_plan(info, BIG_CPU, Wishes(n_ctx=n_ctx, n_ubatch=n_ubatch))
    assert plan.fits and [d.kind for d in plan.devices] == ["cpu"]
    return plan, info.n_bytes


def _close(projected_bytes: float, reported_mib: float, rel: float) -> bool:
    # llama.cpp prints MiB with two decimals: allow that rounding as well
    return abs(projected_bytes / MiB - reported_mib) <= max(rel * reported_mib, 0.006)


# --- real loads of the tiny models ----------------------------------------------------

TINY_MODELS = ["tiny_scout", "tiny_maverick"]
TINY_CASES = [(16_384, 512), (4096, 512), (12_000, 256)]
TINY_LOADS = [(which, n_ctx, n_ubatch) for which in TINY_MODELS for n_ctx, n_ubatch in TINY_CASES]


@pytest.fixture(scope="module")
def tiny_loads(
    tiny_scout: Path, tiny_maverick: Path, engine_config: EngineConfig
) -> Lazy[list[Figures]]:
    """One child making all of TINY_LOADS."""
    paths = {"tiny_scout": tiny_scout, "tiny_maverick": tiny_maverick}
    return Lazy(_loads, engine_config, [(paths[w], c, u) for w, c, u in TINY_LOADS])


@pytest.mark.parametrize(("n_ctx", "n_ubatch"), TINY_CASES)
@pytest.mark.parametrize("which", TINY_MODELS)
def test_tiny_llama4_projection_matches_a_real_load(
    which: str,
    n_ctx: int,
    n_ubatch: int,
    request: pytest.FixtureRequest,
    tiny_loads: Lazy[list[Figures]],
) -> None:
    path: Path = request.getfixturevalue(which)
    real = tiny_loads()[TINY_LOADS.index((which, n_ctx, n_ubatch))]
    plan, n_bytes = _cpu_plan(path, n_ctx, n_ubatch)
    (cpu,) = plan.devices
    # weights: exactly the tensor bytes; the mapped buffer within 2 %
    assert cpu.weights + cpu.experts == n_bytes == real.model_size
    assert _close(cpu.weights + cpu.experts, real.model_buffers, 0.02)
    # KV: both caches (1 global layer, 3 chunked ones), cells exactly
    shape = model_shape(read_gguf(path))
    kv = kv_cache(shape, n_ctx, n_ubatch=n_ubatch)
    assert [(c, n) for _, c, n in real.kv] == [(kv.global_cells, 1), (kv.swa_cells, 3)]
    assert _close(kv.global_bytes, real.kv[0][0], 0.02)
    assert _close(kv.swa_bytes, real.kv[1][0], 0.02)
    assert _close(cpu.kv, real.kv_mib, 0.02)
    assert _close(cpu.compute, real.compute, 0.02)


def test_demo_models_projection(
    smollm2_gguf: Path, gemma3_gguf: Path, engine_config: EngineConfig
) -> None:
    """A dense Llama (all layers global) and Gemma 3 (5 of 6 layers windowed, 512)."""
    cases = [(smollm2_gguf, 8192, 512), (gemma3_gguf, 16_384, 512)]
    for (path, n_ctx, _), real in zip(
        cases, run_in_child(_loads, engine_config, cases), strict=True
    ):
        plan, n_bytes = _cpu_plan(path, n_ctx, 512)
        (cpu,) = plan.devices
        assert cpu.weights + cpu.experts == n_bytes == real.model_size
        assert _close(cpu.kv, real.kv_mib, 0.02), (path.name, cpu.kv / MiB, real.kv)
        assert _close(cpu.compute, real.compute, 0.05), (path.name, cpu.compute / MiB, real)


# --- llama.cpp's simulation of the real layouts ---------------------------------------


@pytest.fixture(scope="session")
def header_only(model_cache_dir: Path) -> dict[str, Path]:
    """Sparse header-only GGUFs of the real layouts (a few MB of disk each)."""
    if not real_layouts.sparse_files_work(model_cache_dir):
        pytest.skip("the test cache's file system does not keep sparse files")
    return {
        layout.label: real_layouts.ensure_header_only(layout, model_cache_dir)
        for layout in real_layouts.LAYOUTS
    }


def test_scout_simulation_reproduces_the_issue_figures(
    header_only: dict[str, Path], engine_config: EngineConfig
) -> None:
    path = header_only["scout-q4_k_m"]
    cases = [(path, 131_072, 512, False), (path, 131_072, 512, True)]
    small, full = run_in_child(_simulations, engine_config, cases)
    assert small.kv == [(6144.0, 131_072, 12), (1224.0, 8704, 36)]
    assert small.compute == pytest.approx(434.72)
    assert [m for m, _, _ in full.kv] == [6144.0, 18_432.0]
    shape = model_shape(read_gguf(path))
    assert kv_cache(shape, 131_072, swa_full=True).swa_bytes == 18_432 * MiB


LAYOUT_CASES = [
    ("scout-q4_k_m", 8192, 512),
    ("scout-q4_k_m", 131_072, 512),
    ("scout-q4_k_m", 1_048_576, 512),
    ("scout-q4_k_m", 131_072, 2048),
    ("scout-iq2_xxs-mix", 131_072, 512),
    ("maverick-q4_k_s", 131_072, 512),
    ("maverick-q4_k_s", 1_048_576, 512),
]


@pytest.fixture(scope="module")
def layout_simulations(
    header_only: dict[str, Path], engine_config: EngineConfig
) -> Lazy[list[Figures]]:
    """One child simulating every one of LAYOUT_CASES."""
    cases = [
        (header_only[label], n_ctx, n_ubatch, False) for label, n_ctx, n_ubatch in LAYOUT_CASES
    ]
    return Lazy(_simulations, engine_config, cases)


@pytest.mark.slow
@pytest.mark.parametrize(("label", "n_ctx", "n_ubatch"), LAYOUT_CASES)
def test_real_layout_projection_matches_the_simulation(
    header_only: dict[str, Path],
    label: str,
    n_ctx: int,
    n_ubatch: int,
    layout_simulations: Lazy[list[Figures]],
) -> None:
    path = header_only[label]
    sim = layout_simulations()[LAYOUT_CASES.index((label, n_ctx, n_ubatch))]
    info = read_gguf(path)
    assert info.n_bytes == sim.model_size  # weights: every tensor, to the byte
    assert sim.model_buffers == 0.0  # what no_alloc prints for them
    shape = model_shape(info)
    kv = kv_cache(shape, n_ctx, n_ubatch=n_ubatch)
    assert [(c, n) for _, c, n in sim.kv] == [(kv.global_cells, 12), (kv.swa_cells, 36)]
    assert _close(kv.global_bytes, sim.kv[0][0], 0.0) and _close(kv.swa_bytes, sim.kv[1][0], 0.0)
    # the compute buffer is the graph allocator's peak: within 5 %, never under by 2 %
    projected = compute_buffer_bytes(shape, kv, n_ubatch) / MiB
    assert -0.02 <= (projected - sim.compute) / sim.compute <= 0.05, (projected, sim.compute)
    # and the plan carries these figures (CPU-only, as simulated)
    plan = make_plan(info, BIG_CPU, Wishes(n_ctx=n_ctx, n_ubatch=n_ubatch))
    (cpu,) = plan.devices
    assert cpu.kv == kv.total and cpu.compute == compute_buffer_bytes(shape, kv, n_ubatch)
    assert cpu.weights + cpu.experts == sim.model_size
