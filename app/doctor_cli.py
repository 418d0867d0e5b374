"""``herd doctor [--json]``: does Herd's engine work on this machine, and if not, why.

Exit 0 when some engine configuration decodes correctly here, 1 when none does (the
reason is printed), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.core.doctor import diagnose
from app.core.paths import AppPaths

EXIT_WORKS = 0
EXIT_BROKEN = 1


def add_parser(sub: Any) -> None:
    """Register ``herd doctor``."""
    doctor = sub.add_parser(
        "doctor", help="check that the engine works on this machine, and describe the machine"
    )
    doctor.add_argument("--json", action="store_true", help="print JSON for scripts")
    doctor.add_argument("--no-bench", action="store_true", help="skip the 5 s decode benchmark")
    doctor.add_argument(
        "--recheck", action="store_true", help="run the engine self-check again, now"
    )


def _gib(n: Any) -> str:
    return f"{n / 2**30:.1f} GiB" if isinstance(n, int | float) and n else "?"


def _text(report: dict[str, Any]) -> str:
    v, lc, cpu, mem = report["version"], report["llama_cpp"], report["cpu"], report["memory"]
    check = report["self_check"]
    lines = [
        f"Herd {v['herd']} on Python {v['python']} ({v['platform']})",
        f"llama.cpp     llama-cpp-python {lc.get('llama_cpp_python', '?')}, backends: "
        f"{', '.join(lc.get('backends', [])) or '?'}"
        f"{' (RPC)' if lc.get('supports_rpc') else ''}",
    ]
    if "error" in lc:
        lines.append(f"              {lc['error']}")
    variant = report["cpu_variant"]
    kind = "desktop bundle" if report["bundle"] else "source install"
    build = f"portable, CPU variant {variant}" if variant else "CPU built in (this machine's)"
    lines.append(f"install       {kind}; llama.cpp {build}")
    lines += [
        f"CPU           {cpu['model']} ({cpu['arch']}), {cpu['physical_cores']} cores "
        f"({cpu['cores']} threads)",
        f"  features    {' '.join(cpu['features']) or '?'}",
        f"  llama.cpp   {' '.join(cpu['llama_cpp_features']) or '?'}",
        f"memory        {_gib(mem['ram_total_bytes'])} RAM, "
        f"{_gib(mem['ram_available_bytes'])} available",
    ]
    if mem.get("gpu_working_set_limit_bytes"):
        lines.append(
            f"  GPU limit   {_gib(mem['gpu_working_set_limit_bytes'])} (Apple working set)"
        )
    devices = report["devices"]
    shown = devices["llama_cpp"] or devices["probe"]
    gpus = [d for d in shown if not str(d.get("name", "")).startswith("CPU")]
    for d in gpus:
        lines.append(
            f"GPU           {d['name']}: {d['description']}, {_gib(d['free_bytes'])} free "
            f"of {_gib(d['total_bytes'])}"
        )
    if not gpus:
        lines.append("GPU           none (llama.cpp runs on the CPU)")
    for note in devices["notes"]:
        lines.append(f"  note        {note}")
    lines.append(f"self-check    {check['cause']}")
    for a in check["attempts"]:
        mark = "pass" if a["ok"] else "FAIL"
        lines.append(f"  {mark}        {a['config']}: {a['outcome']} ({a['seconds']:.2f} s)")
        if a["log_line"]:
            lines.append(f"              {a['log_line']}")
    lines.append(f"  chosen      {check['chosen'] or 'none works'}")
    bench = report["bench"]
    if "skipped" in bench:
        lines.append(f"benchmark     skipped: {bench['skipped']}")
    elif "error" in bench:
        lines.append(f"benchmark     failed: {bench['error']}")
    else:
        lines.append(
            f"benchmark     {bench['decode_tok_s']} tok/s decode, {bench['prompt_tok_s']} tok/s "
            f"prompt (demo model, {bench['seconds']:.0f} s)"
        )
    for name, path in report["paths"].items():
        lines.append(f"{name:<13} {path}" if name != "data" else f"paths         data {path}")
    return "\n".join(lines)


def run(args: argparse.Namespace, paths: AppPaths) -> int:
    """Run ``herd doctor``."""
    report, record = diagnose(paths, bench=not args.no_bench, recheck=args.recheck)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_text(report))
    if not record.works:
        print(f"herd: the engine does not work on this machine: {record.cause}", file=sys.stderr)
        return EXIT_BROKEN
    return EXIT_WORKS
