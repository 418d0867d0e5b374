"""The engine self-check's child: load the probe model in one configuration and decode.

Run by :mod:`app.core.engine.selfcheck` as ``python -m app.core.engine.selfcheck_child
MODEL CONFIG`` (one JSON line on stdout per finding: llama.cpp's system info and devices
first, then the verdict), or with ``--facts`` for ``herd doctor``'s view of llama.cpp. A
crash here is the finding: the parent reads the signal.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from app.core.engine.engine_config import EngineConfig

DECODE_TOKENS = 4


def _child(model: str, config: EngineConfig) -> int:
    import numpy as np

    from app.core.engine import backends, llama_devices, llama_ext
    from app.core.settings import LoadSettings, default_threads

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # llama.cpp's prints go with its log, never into the verdict
    llama_ext.send_log_to(os.fdopen(2, "wb", buffering=0, closefd=False))
    backends.load_backends()
    devices = [f"{name}: {desc}" for name, desc, *_ in llama_devices.backend_devices()]
    out.write(json.dumps({"system_info": llama_devices.system_info(), "devices": devices}) + "\n")
    settings = LoadSettings(n_ctx=64, n_batch=64, n_ubatch=64, n_threads=default_threads())
    llm = llama_ext.HerdLlama(**llama_ext.llama_kwargs(model, settings, config))
    if os.environ.get("HERD_TEST_CRASH_REPACKED_DECODE") == "1" and config.use_extra_bufts:
        os.kill(os.getpid(), signal.SIGSEGV)  # tests: llama.cpp's AMX crash, emulated
    tokens = [llm.token_bos(), *range(40, 48)]
    for _ in range(DECODE_TOKENS):
        llm.eval(tokens)
        logits = llama_ext.last_logits(llm)
        if not np.isfinite(logits).all() or float(logits.std()) == 0.0:
            out.write(json.dumps({"ok": False, "outcome": "gave non-finite logits"}) + "\n")
            return 1
        tokens = [int(np.argmax(logits))]
    out.write(json.dumps({"ok": True, "outcome": f"decoded {DECODE_TOKENS} tokens"}) + "\n")
    out.flush()
    os._exit(0)  # skip llama.cpp's teardown: the verdict is in


def _facts() -> int:
    """Print llama.cpp's view of this machine as one JSON line (for ``herd doctor``)."""
    from app.core.engine import backends, llama_devices

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    portable = backends.load_backends()
    devices = [
        {"name": n, "description": d, "type": t, "free_bytes": f, "total_bytes": tot}
        for n, d, t, f, tot in llama_devices.backend_devices()
    ]
    facts = {**llama_devices.build_facts(), "devices": devices}
    facts.update(portable_build=portable, cpu_variant=backends.cpu_variant())
    out.write(json.dumps(facts) + "\n")
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1:] == ["--facts"]:
        sys.exit(_facts())
    sys.exit(_child(sys.argv[1], EngineConfig.from_dict(json.loads(sys.argv[2]))))
