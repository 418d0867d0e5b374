"""The self-check's verdict in words, from recorded llama.cpp logs (no llama.cpp here)."""

from __future__ import annotations

from app.core.engine.engine_config import CANDIDATES, DEFAULT, SAFE, Attempt
from app.core.engine.selfcheck import _telling_line, explain

AMX_LOG = """llama_model_loader: loaded meta data with 27 key-value pairs from /home/amx/probe.gguf
load_tensors:          AMX model buffer size =     6.75 MiB
ggml_backend_amx_buffer_set_tensor: amx repack tensor blk.0.ffn_gate_exps.weight of type q4_0
ggml_backend_amx_buffer_set_tensor: amx repack tensor blk.0.ffn_up_exps.weight of type q4_0
"""
REPACK_LOG = """llama_model_loader: loaded meta data from /tmp/hamx/cache/probe.gguf
CPU : SSE3 = 1 | AVX2 = 1 | REPACK = 1 |
repack: repack tensor blk.3.ffn_up_exps.weight with q4_0_8x8
"""
XEON_INFO = "CPU : SSE3 = 1 | AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 |"


def test_the_telling_line_is_llama_cpps_last_amx_line() -> None:
    assert _telling_line(AMX_LOG).endswith(
        "amx repack tensor blk.0.ffn_up_exps.weight of type q4_0"
    )
    # a folder named "amx" and the system-info line are not news
    assert (
        _telling_line(REPACK_LOG) == "repack: repack tensor blk.3.ffn_up_exps.weight with q4_0_8x8"
    )
    assert (
        _telling_line("x\nGGML_ASSERT(buf != NULL) failed\nAborted")
        == "GGML_ASSERT(buf != NULL) failed"
    )


def test_an_amx_crash_is_named_as_such() -> None:
    attempts = [
        Attempt(DEFAULT, False, "crashed (SIGSEGV)", 0.3, _telling_line(AMX_LOG)),
        Attempt(SAFE, True, "decoded 4 tokens", 0.3),
    ]
    cause = explain(attempts, XEON_INFO)
    assert cause.startswith("llama.cpp's AMX path crashed (SIGSEGV) on this CPU; it is off")
    plain = explain(attempts[:1] + attempts[1:], "CPU : AVX2 = 1 |")
    assert plain.startswith("llama.cpp's AMX path")  # the log line says AMX even so
    other = [
        Attempt(DEFAULT, False, "crashed (SIGILL)", 0.3, _telling_line(REPACK_LOG)),
        attempts[1],
    ]
    assert explain(other, "CPU : AVX2 = 1 |").startswith(
        "llama.cpp's repacked CPU weights crashed (SIGILL) on this CPU; they are off"
    )


def test_nothing_working_says_so_and_how_to_rebuild() -> None:
    attempts = [Attempt(c, False, "crashed (SIGILL)", 0.2) for c in CANDIDATES]
    cause = explain(attempts, XEON_INFO)
    assert "cannot decode on this machine in any configuration" in cause
    assert "default: crashed (SIGILL)" in cause and "pip cache remove llama_cpp_python" in cause


def test_a_working_default_is_said_plainly() -> None:
    cause = explain([Attempt(DEFAULT, True, "decoded 4 tokens", 0.5)], XEON_INFO)
    assert cause == "llama.cpp's default configuration works on this machine (decoded 4 tokens)."
