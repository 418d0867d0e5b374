"""CPU features from recorded /proc/cpuinfo and sysctl outputs (machines we do not have)."""

from __future__ import annotations

from app.core.doctor import llama_cpu_features
from app.core.hardware.cpu import parse_cpuinfo, parse_sysctl_features

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 \
avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni avx_vnni amx_bf16 \
amx_tile amx_int8
"""

GRAVITON3 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm \
jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm \
ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng
CPU implementer\t: 0x41
"""

M2_SYSCTL = """hw.optional.arm.FEAT_BF16: 1
hw.optional.arm.FEAT_DotProd: 1
hw.optional.arm.FEAT_I8MM: 1
hw.optional.arm.FEAT_SME: 0
hw.optional.neon: 1
hw.optional.floatingpoint: 1
"""


def test_xeon_with_amx() -> None:
    model, features = parse_cpuinfo(SAPPHIRE_RAPIDS)
    assert model == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert {"AVX2", "AVX512", "AVX512-VNNI", "AMX", "AMX-INT8", "AVX-VNNI"} <= set(features)


def test_arm_server() -> None:
    model, features = parse_cpuinfo(GRAVITON3)
    assert model == ""  # ARM's cpuinfo has no model name
    assert features == ("NEON", "DOTPROD", "I8MM", "SVE")


def test_apple_silicon_sysctl() -> None:
    assert parse_sysctl_features(M2_SYSCTL) == ("NEON", "DOTPROD", "I8MM", "BF16")


def test_llama_cpp_system_info() -> None:
    info = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 | AMX_INT8 = 1 | REPACK = 1 |"
    assert llama_cpu_features(info) == ["SSE3", "AVX2", "AMX_INT8", "REPACK"]
