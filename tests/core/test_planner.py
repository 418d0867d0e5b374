"""The load planner on the real Scout and Maverick layouts and five hardware profiles."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest

from app.core.errors import UnsupportedModelError
from app.core.gguf.info import GGUFInfo, TensorGroup, read_gguf
from app.core.hardware.probe import Backend, Device, Hardware
from app.core.plan import bandwidth
from app.core.plan.kv_estimate import kv_cache, model_shape, pad_ctx
from app.core.plan.planner import Plan, Wishes, experts_pattern, make_plan, margin
from app.core.plan.search import DEFAULT_MAX_AUTO_CTX
from app.core.plan.words import describe, layer_list
from app.core.settings import KVType, LoadSettings
from tests.fixtures import real_layouts

MiB, GiB, KiB = 1 << 20, 1 << 30, 1 << 10


def _apple(chip: str, ram_gib: int, limit_gib: int, available_gib: int, cores: int) -> Hardware:
    limit = limit_gib * GiB
    gpu = Device("Metal", Backend.METAL, f"Apple {chip}", ram_gib * GiB, limit)
    return Hardware((gpu,), ram_gib * GiB, available_gib * GiB, cores, True, limit, f"Apple {chip}")


# The five machines of the issue, as the probes would describe them (built here, so these
# tests do not depend on app.core.hardware.probe's own profiles).
PROFILES: dict[str, Hardware] = {
    "rtx4090": Hardware(
        (Device("CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 4090", 25_757_220_864, 25_200_000_000),),
        64 * GiB, 58 * GiB, 16, cpu_description="AMD Ryzen 9 7950X 16-Core Processor",
    ),
    "m3ultra": _apple("M3 Ultra", 192, 144, 180, 24),
    "m4max": _apple("M4 Max", 64, 48, 56, 16),
    "cpu64": Hardware((), 64 * GiB, 58 * GiB, 16, cpu_description="AMD Ryzen 9 7950X"),
    "h100": Hardware(
        (Device("CUDA0", Backend.CUDA, "NVIDIA H100 80GB HBM3", 85_520_809_984, 84_900_000_000),),
        256 * GiB, 240 * GiB, 32, cpu_description="AMD EPYC 9354 32-Core Processor",
    ),
}  # fmt: skip
MODELS = {
    "scout-q4_k_m": real_layouts.scout_q4_k_m(),
    "scout-2.7bit": real_layouts.scout_iq2(),
    "maverick-4.5bit": real_layouts.maverick_q4(),
}
CONTEXTS = (8192, 131_072, 1_048_576)
ISSUE_KEYS = [
    "model", "fits", "n_ctx", "type_k", "type_v", "swa_full", "n_gpu_layers",
    "cpu_expert_layers", "predicted_decode_tok_s", "devices", "reasons",
]  # fmt: skip


def _gpus(plan: Plan) -> list:
    return [d for d in plan.devices if d.kind == "gpu"]


def _cpu(plan: Plan):
    (cpu,) = [d for d in plan.devices if d.kind == "cpu"]
    return cpu


def _expert_bytes(info: GGUFInfo) -> dict[int, int]:
    out: dict[int, int] = {}
    for t in info.tensors:
        if t.group is TensorGroup.ROUTED_EXPERTS and t.layer is not None:
            out[t.layer] = out.get(t.layer, 0) + t.n_bytes
    return out


# --- the layouts and the KV formula ---------------------------------------------------


def test_layouts_match_the_published_configs() -> None:
    scout, maverick = MODELS["scout-q4_k_m"], MODELS["maverick-4.5bit"]
    assert scout.moe_layers == tuple(range(48)) and scout.n_experts == 16
    assert maverick.moe_layers == tuple(range(1, 48, 2)) and maverick.n_experts == 128
    # the issue's per-token figures: Scout reads ~6.0B routed + 10.1B other parameters
    active = sum(t.n_elements for t in scout.tensors if t.group is TensorGroup.ROUTED_EXPERTS)
    assert active / 16 == pytest.approx(6.04e9, rel=0.01)
    others = sum(t.n_elements for t in scout.tensors if t.group is not TensorGroup.ROUTED_EXPERTS)
    embd = 5120 * 202_048  # only one row of token_embd is read per token
    assert (others - embd) == pytest.approx(10.1e9, rel=0.01)
    assert 60 * GiB < scout.n_bytes < 62 * GiB  # "about 61 GiB at Q4_K_M"
    bits = {k: m.n_bytes * 8 / m.param_count for k, m in MODELS.items()}
    assert bits["scout-2.7bit"] == pytest.approx(2.7, abs=0.1)
    assert bits["maverick-4.5bit"] == pytest.approx(4.5, abs=0.1)


def test_header_only_file_reads_back_as_the_layout(tmp_path: Path) -> None:
    if not real_layouts.sparse_files_work(tmp_path):
        pytest.skip("this file system does not keep sparse files")
    path = real_layouts.write_header_only(real_layouts.SCOUT_Q4_K_M, tmp_path / "scout.gguf")
    assert path.stat().st_size > 60 * GiB
    assert path.stat().st_blocks * 512 < 64 * MiB  # sparse: only the header is on disk
    info, built = read_gguf(path), MODELS["scout-q4_k_m"]
    assert [(t.name, t.shape, t.type_name, t.n_bytes) for t in info.tensors] == [
        (t.name, t.shape, t.type_name, t.n_bytes) for t in built.tensors
    ]
    assert model_shape(info) == model_shape(built)


def test_scout_kv_at_128k_is_the_small_cache_not_the_full_one() -> None:
    shape = model_shape(MODELS["scout-q4_k_m"])
    assert sum(shape.swa_layers) == 36
    assert [i for i, s in enumerate(shape.swa_layers) if not s] == list(range(3, 48, 4))
    kv = kv_cache(shape, 131_072)
    assert (kv.global_cells, kv.swa_cells) == (131_072, 8704)
    assert kv.global_bytes == 6144 * MiB and kv.swa_bytes == 1224 * MiB
    assert kv.total == 7368 * MiB
    full = kv_cache(shape, 131_072, swa_full=True)
    assert (full.global_bytes, full.swa_bytes) == (6144 * MiB, 18_432 * MiB)
    # growth per token once past the chunk: 48 KiB small, 192 KiB full-size
    assert (kv_cache(shape, 262_144).total - kv.total) / 131_072 == 48 * KiB
    assert (kv_cache(shape, 262_144, swa_full=True).total - full.total) / 131_072 == 192 * KiB
    # q8_0 is x34/64 of f16, q4_0 x18/64
    assert kv_cache(shape, 131_072, KVType.Q8_0, KVType.Q8_0).total == kv.total * 34 // 64
    assert kv_cache(shape, 131_072, KVType.Q4_0, KVType.Q4_0).total == kv.total * 18 // 64
    # and the plan carries the small one
    plan = make_plan(MODELS["scout-q4_k_m"], PROFILES["h100"], Wishes(n_ctx=131_072))
    assert plan.kv_bytes == sum(d.kv for d in plan.devices) == 7368 * MiB
    assert plan.kv_full_bytes == 24_576 * MiB and not plan.swa_full
    assert pad_ctx(1000) == 1024 and kv_cache(shape, 1000).swa_cells == 1024


def test_dense_llama_has_only_global_layers() -> None:
    info = _dense_llama()
    shape = model_shape(info)
    assert not any(shape.swa_layers) and shape.n_swa == 0
    kv = kv_cache(shape, 4096)
    assert kv.swa_bytes == 0
    assert kv.total == 4 * 4096 * (2 * 2 * 64) * 2  # layers, cells, K+V of 2 heads, f16


# --- the grid: 5 machines x 3 models x 3 contexts -------------------------------------


@pytest.mark.parametrize("n_ctx", CONTEXTS)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("machine", PROFILES)
def test_grid(machine: str, model: str, n_ctx: int) -> None:
    hw, info = PROFILES[machine], MODELS[model]
    start = time.perf_counter()
    plan = make_plan(info, hw, Wishes(n_ctx=n_ctx))
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05, f"planning took {elapsed * 1000:.0f} ms"
    gpus, cpu = _gpus(plan), _cpu(plan)
    # GPUs are never planned beyond what they have free (less the margin)
    for g in gpus:
        assert g.total <= g.budget <= g.capacity
    if plan.fits:
        for d in plan.devices:
            assert d.total <= d.budget and d.total <= d.capacity, d
        if hw.unified_memory:  # one pool: the GPU and CPU parts together fit the free RAM
            assert sum(d.total for d in plan.devices) <= hw.ram_available
    else:
        assert plan.reasons[0].startswith("Does not fit")
        assert re.search(r"\d", plan.reasons[0])  # says how much is missing
    # everything is placed exactly once
    assert sum(d.weights + d.experts for d in plan.devices) == info.n_bytes
    assert sum(d.kv for d in plan.devices) == plan.kv_bytes
    assert plan.kv_bytes == kv_cache(model_shape(info), n_ctx).total
    assert plan.n_ctx == n_ctx and plan.swa_full is False and plan.flash_attn
    # the GPU is filled before experts spill to the CPU
    experts = _expert_bytes(info)
    if gpus:
        assert plan.n_gpu_layers >= 1
        spilled = _spilled(plan)
        if spilled:
            room = gpus[0].budget - gpus[0].total
            assert room < min(experts[i] for i in spilled)
        assert set(plan.gpu_expert_layers) | set(plan.cpu_expert_layers) == set(experts)
        assert sum(experts[i] for i in plan.gpu_expert_layers) == gpus[0].experts
        assert sum(experts[i] for i in plan.cpu_expert_layers) == cpu.experts
    else:
        assert plan.n_gpu_layers == 0 and not plan.tensor_overrides
        assert cpu.experts == sum(experts.values())
    _check_overrides(plan, info)
    assert plan.predicted_decode_tok_s > 0
    assert len(plan.reasons) >= 8 and all(r.strip() for r in plan.reasons)


def _spilled(plan: Plan) -> list[int]:
    """MoE layers on the GPU whose routed experts stay in CPU memory."""
    first_on_gpu = 49 - plan.n_gpu_layers if plan.n_gpu_layers else 48
    return [i for i in plan.cpu_expert_layers if i >= first_on_gpu]


def _check_overrides(plan: Plan, info: GGUFInfo) -> None:
    """The override regex matches exactly the routed experts that stay on the CPU."""
    if not plan.tensor_overrides:
        assert not _spilled(plan)
        return
    ((pattern, buft),) = plan.tensor_overrides
    assert buft == "CPU"
    rx = re.compile(pattern)
    matched = {t.layer for t in info.tensors if rx.search(t.name)}
    assert all(t.group is TensorGroup.ROUTED_EXPERTS for t in info.tensors if rx.search(t.name))
    assert matched == set(_spilled(plan))


def test_expected_verdicts() -> None:
    def plan(machine: str, model: str, n_ctx: int | None = 131_072, **kw: object) -> Plan:
        return make_plan(MODELS[model], PROFILES[machine], Wishes(n_ctx=n_ctx, **kw))

    p = plan("rtx4090", "scout-q4_k_m")
    assert p.fits and p.n_gpu_layers == 49 and 0 < len(p.gpu_expert_layers) < 48
    assert p.cpu_expert_layers == tuple(range(48 - len(p.gpu_expert_layers)))  # first ones
    assert not p.use_mmap  # overrides: llama.cpp advises no mmap
    p = plan("m3ultra", "scout-q4_k_m")
    assert p.fits and not p.cpu_expert_layers and p.use_mmap and p.unified_memory
    assert plan("m3ultra", "maverick-4.5bit").fits is False  # 210 GiB > 192 GiB
    p = plan("m4max", "scout-q4_k_m")
    assert not p.fits and p.max_ctx == 0 and "weights alone" in p.reasons[0]
    p = plan("m4max", "scout-q4_k_m", allow_disk=True)
    assert p.fits and p.disk_bytes > 0 and p.use_mmap
    assert any(r.startswith("WARNING") and "disk" in r for r in p.reasons)
    assert plan("m4max", "scout-2.7bit").fits
    assert plan("cpu64", "scout-2.7bit").fits and not plan("cpu64", "scout-q4_k_m").fits
    p = plan("h100", "maverick-4.5bit")
    assert p.fits and p.cpu_expert_layers and p.n_gpu_layers == 49
    assert set(p.cpu_expert_layers) <= set(range(1, 48, 2))
    p = plan("h100", "scout-q4_k_m", 8192)
    assert p.fits and not p.cpu_expert_layers and not p.tensor_overrides
    # speed: all on GPU beats experts on the CPU
    assert p.predicted_decode_tok_s > plan("rtx4090", "scout-q4_k_m").predicted_decode_tok_s


def test_context_that_does_not_fit_says_the_largest_that_does() -> None:
    info, hw = MODELS["scout-q4_k_m"], PROFILES["rtx4090"]
    p = make_plan(info, hw, Wishes(n_ctx=1_048_576))
    assert not p.fits and 131_072 < p.max_ctx < 1_048_576
    assert f"{p.max_ctx:,}" in p.reasons[0] and "q8_0" in p.reasons[0]
    assert make_plan(info, hw, Wishes(n_ctx=p.max_ctx)).fits
    assert not make_plan(info, hw, Wishes(n_ctx=p.max_ctx + 1024)).fits
    q4 = make_plan(info, hw, Wishes(n_ctx=1_048_576, kv_type=KVType.Q4_0))
    assert q4.max_ctx > p.max_ctx and q4.flash_attn and q4.type_v is KVType.Q4_0


def test_automatic_context() -> None:
    info, hw = MODELS["scout-q4_k_m"], PROFILES["rtx4090"]
    auto = make_plan(info, hw)
    assert auto.n_ctx == DEFAULT_MAX_AUTO_CTX == 32_768  # the default cap, which fits
    # the cap leaves memory to the experts: a longer context costs expert layers on the GPU
    long = make_plan(info, hw, Wishes(n_ctx=131_072))
    assert len(auto.gpu_expert_layers) > len(long.gpu_expert_layers)
    big = make_plan(info, hw, Wishes(max_auto_ctx=10_485_760))
    assert big.fits and big.n_ctx == big.max_ctx < 10_485_760
    # never beyond what the model was trained for
    assert make_plan(info, hw, Wishes(n_ctx=50_000_000)).n_ctx == 10_485_760


def test_pinned_expert_layers() -> None:
    info, hw = MODELS["scout-q4_k_m"], PROFILES["rtx4090"]
    p = make_plan(info, hw, Wishes(n_ctx=32_768, gpu_expert_layers=3))
    assert p.fits and p.gpu_expert_layers == (45, 46, 47)
    assert p.cpu_expert_layers == tuple(range(45)) and p.max_gpu_expert_layers > 3
    slower = p.predicted_decode_tok_s
    assert make_plan(info, hw, Wishes(n_ctx=32_768)).predicted_decode_tok_s > slower
    too_many = make_plan(info, hw, Wishes(n_ctx=32_768, gpu_expert_layers=40))
    assert not too_many.fits and "pinned" in too_many.reasons[0]


def test_apple_wired_limit_advice_and_one_pool() -> None:
    mac = _apple("M2 Max", 96, 64, 90, 12)  # a 96 GB Mac whose GPU may wire 64 GiB
    p = make_plan(MODELS["scout-q4_k_m"], mac, Wishes(n_ctx=131_072))
    assert p.fits and p.cpu_expert_layers  # 68.6 GiB needed, 64 GiB allowed: some spill
    assert p.wired_limit_advice_mb == 96 * 1024 - 8192
    assert any("`sudo sysctl iogpu.wired_limit_mb=90112`" in r for r in p.reasons)
    # both parts come out of one pool: nothing is counted twice
    gpu, cpu = _gpus(p)[0], _cpu(p)
    assert gpu.total + cpu.total <= mac.ram_available - margin(mac.ram_total, Wishes())
    assert gpu.experts + cpu.experts == sum(_expert_bytes(MODELS["scout-q4_k_m"]).values())
    # with the limit raised as advised, everything runs on the GPU
    raised = _apple("M2 Max", 96, 88, 90, 12)
    q = make_plan(MODELS["scout-q4_k_m"], raised, Wishes(n_ctx=131_072))
    assert q.fits and not q.cpu_expert_layers and q.wired_limit_advice_mb is None


def test_cpu_only_and_gpu_switched_off() -> None:
    info = MODELS["scout-2.7bit"]
    p = make_plan(info, PROFILES["h100"], Wishes(n_ctx=8192, use_gpu=False))
    assert p.n_gpu_layers == 0 and [d.kind for d in p.devices] == ["cpu"]
    assert _cpu(p).weights + _cpu(p).experts == info.n_bytes and p.use_mmap


def test_two_gpus_split_the_layers() -> None:
    card = Device("CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 3090", 24 * GiB, 23 * GiB)
    hw = Hardware((card, Device("CUDA1", Backend.CUDA, card.description, 24 * GiB, 23 * GiB)),
                  128 * GiB, 120 * GiB, 16)  # fmt: skip
    p = make_plan(MODELS["scout-q4_k_m"], hw, Wishes(n_ctx=65_536))
    assert p.fits and len(_gpus(p)) == 2 and sum(p.tensor_split) == 48
    for g in _gpus(p):
        assert 0 < g.total <= g.budget and g.experts > 0


def test_partial_offload_when_dense_layers_do_not_fit() -> None:
    small = Device("CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 4060", 8 * GiB, 8 * GiB)
    hw = Hardware((small,), 128 * GiB, 120 * GiB, 8)
    p = make_plan(MODELS["maverick-4.5bit"], hw, Wishes(n_ctx=8192))
    assert not p.fits  # 210 GiB
    p = make_plan(MODELS["scout-q4_k_m"], hw, Wishes(n_ctx=262_144))
    assert p.fits and 1 <= p.n_gpu_layers < 49
    assert _gpus(p)[0].total <= _gpus(p)[0].budget


def test_dense_model_plan() -> None:
    info = _dense_llama()
    p = make_plan(info, PROFILES["rtx4090"], Wishes(n_ctx=4096))
    assert p.fits and p.n_gpu_layers == 5 and p.n_moe_layers == 0 and not p.tensor_overrides
    # tied embeddings: llama.cpp loads token_embd again as the output on the GPU
    embd = 2 * 256 * 1000
    assert _gpus(p)[0].weights + _cpu(p).weights == info.n_bytes + embd
    assert _cpu(p).weights == embd


def test_json_shape() -> None:
    p = make_plan(MODELS["scout-q4_k_m"], PROFILES["rtx4090"], Wishes(n_ctx=131_072))
    data = json.loads(json.dumps(p.to_json()))
    assert list(data)[: len(ISSUE_KEYS)] == ISSUE_KEYS
    assert data["type_k"] == "f16" and data["swa_full"] is False and data["n_gpu_layers"] == 49
    for d in data["devices"]:
        assert list(d)[:4] == ["name", "kind", "capacity", "planned"]
        assert list(d["planned"]) == ["weights", "experts", "kv", "compute"]
        assert all(isinstance(v, int) for v in d["planned"].values())
    assert [d["kind"] for d in data["devices"]] == ["gpu", "cpu"]
    assert isinstance(data["predicted_decode_tok_s"], float)
    assert data["cpu_expert_layers"] == list(p.cpu_expert_layers)
    text = describe(p)
    assert "CUDA0" in text and "CPU" in text and "Why" in text and "override" in text


def test_load_settings_from_plan() -> None:
    p = make_plan(MODELS["scout-q4_k_m"], PROFILES["rtx4090"], Wishes(n_ctx=32_768))
    s = p.to_load_settings(LoadSettings(n_threads=3))
    assert (s.n_ctx, s.n_gpu_layers, s.swa_full, s.flash_attn) == (32_768, 49, False, True)
    assert s.tensor_overrides == p.tensor_overrides and s.use_mmap is False
    assert LoadSettings.from_dict(s.to_dict()) == s


def test_experts_pattern_is_compact_and_exact() -> None:
    assert experts_pattern([0, 1, 2]) == r"blk\.([0-2])\.ffn_.*_exps"
    odd = list(range(1, 40, 2))
    pattern = experts_pattern(odd)
    assert pattern == r"blk\.([13579]|1[13579]|2[13579]|3[13579])\.ffn_.*_exps"
    for layer in range(100):
        for stem in ("gate", "up", "down"):
            name = f"blk.{layer}.ffn_{stem}_exps.weight"
            assert bool(re.search(pattern, name)) == (layer in odd), name
        assert not re.search(pattern, f"blk.{layer}.ffn_gate_inp.weight")
        assert not re.search(pattern, f"blk.{layer}.ffn_up_shexp.weight")
    assert experts_pattern([5, 40, 41, 42, 47]) == r"blk\.(5|4[0-27])\.ffn_.*_exps"
    assert layer_list(odd) == "1-39 (odd)" and layer_list([0, 1, 2, 7]) == "0-2, 7"


def test_bandwidth_table() -> None:
    assert bandwidth.lookup("NVIDIA H100 80GB HBM3") == 3350  # not "M3"
    assert bandwidth.lookup("NVIDIA H100 PCIe") == 2000
    assert bandwidth.lookup("Apple M3 Ultra") == 819 and bandwidth.lookup("Apple M3") == 100
    assert bandwidth.lookup("NVIDIA GeForce RTX 4090") == 1008
    assert bandwidth.lookup("NVIDIA GeForce RTX 4070 Ti SUPER") == 672
    assert bandwidth.lookup("Some New GPU") is None
    assert bandwidth.gpu_bandwidth("Some New GPU", Backend.CUDA) == (
        bandwidth.DEFAULT_GPU_GBPS[Backend.CUDA] * bandwidth.GPU_EFFICIENCY,
        False,
    )


def test_a_file_without_layers_is_refused() -> None:
    info = _dense_llama()
    empty = GGUFInfo(info.path, info.parts, 3, {"general.architecture": "llama"}, (), 0, (0,), 32)
    with pytest.raises(UnsupportedModelError):
        make_plan(empty, PROFILES["cpu64"])


def _dense_llama() -> GGUFInfo:
    """A small dense Llama (4 layers, 256 wide, 2 KV heads of 64) built in memory."""
    from app.core.gguf.info import TensorInfo

    tensors, offset = [], 0

    def add(name: str, *shape: int) -> None:
        nonlocal offset
        n = math.prod(shape)
        tensors.append(TensorInfo(name, 1, "F16", shape, n, 2 * n, offset, 0))
        offset += 2 * n

    add("token_embd.weight", 256, 1000)
    for il in range(4):
        for stem, shape in (("attn_q", (256, 256)), ("attn_k", (256, 128)),
                            ("attn_v", (256, 128)), ("attn_output", (256, 256)),
                            ("ffn_gate", (256, 512)), ("ffn_up", (256, 512)),
                            ("ffn_down", (512, 256)), ("attn_norm", (256,))):  # fmt: skip
            add(f"blk.{il}.{stem}.weight", *shape)
    add("output_norm.weight", 256)
    meta = {
        "general.architecture": "llama", "llama.block_count": 4, "llama.context_length": 4096,
        "llama.embedding_length": 256, "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2, "llama.feed_forward_length": 512,
    }  # fmt: skip
    path = Path("dense.gguf")
    return GGUFInfo(path, (path,), 3, meta, tuple(tensors), offset, (0,), 32)
