"""The first-run advice: which Llama 4 to get on a machine, or why none fits."""

from __future__ import annotations

from app.core import first_run
from app.core.hardware.spec import hardware_from_spec
from app.core.hub.verdict import Fit

GiB = 1 << 30


def test_a_small_machine_is_told_why_and_what_to_do() -> None:
    advice = first_run.outlook(hardware_from_spec([], 8 * GiB, False, 4))
    assert advice.best is None
    assert "8.0 GiB of RAM free" in advice.why_not and "IQ1_S" in advice.why_not
    assert "more memory" in advice.what_to_do


def test_a_64_gib_pc_gets_a_scout_of_real_precision_not_the_fastest_1_bit() -> None:
    advice = first_run.outlook(hardware_from_spec([], 64 * GiB, False, 8))
    assert advice.best is not None
    assert advice.best.family.name == "Scout" and not advice.best.low_quality
    assert advice.best.verdict.fit is Fit.CPU_ONLY


def test_when_only_a_1_bit_quant_fits_it_says_so() -> None:
    advice = first_run.outlook(hardware_from_spec([], 24 * GiB, False, 8))
    assert advice.best is not None and advice.best.low_quality
    assert "Very low precision" in advice.best.describe()


def test_a_gpu_box_with_lots_of_ram_gets_maverick() -> None:
    advice = first_run.outlook(hardware_from_spec([80 * GiB] * 4, 512 * GiB, False, 32))
    assert advice.best is not None and advice.best.family.name == "Maverick"
    assert advice.best.verdict.fit is Fit.ALL_GPU
    assert advice.best.family.repo_id.endswith("Maverick-17B-128E-Instruct-GGUF")


def test_a_24_gib_gpu_with_64_gib_ram_puts_experts_in_ram() -> None:
    advice = first_run.outlook(hardware_from_spec([24 * GiB], 64 * GiB, False, 16))
    assert advice.best is not None and advice.best.family.name == "Scout"
    assert advice.best.verdict.fit is Fit.EXPERTS_CPU
    assert "tok/s" in advice.best.describe() and "GiB" in advice.best.describe()


def test_estimates_follow_bits_per_weight() -> None:
    scout = first_run.FAMILIES[-1]
    assert first_run.estimate(scout, "Q8_0") > first_run.estimate(scout, "Q4_K_M")
    # 109B weights at 4.84 bits: about 61 GiB
    assert 60 * GiB < first_run.estimate(scout, "Q4_K_M") < 63 * GiB
