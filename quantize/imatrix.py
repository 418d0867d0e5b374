"""Read llama.cpp's importance-matrix files, in both of its formats, as llama-quantize does.

Following llama.cpp's ``common/imatrix-loader.cpp`` and ``tools/quantize/quantize.cpp``:

* GGUF (``llama-imatrix``'s default): per weight ``<name>.in_sum2`` (F32, ggml shape
  ``{n_per_row, n_mat}``: summed squared activations, one row per expert) and
  ``<name>.counts`` (F32, ``{1, n_mat}``: how many activations each row summed), plus the
  keys ``imatrix.datasets``, ``imatrix.chunk_count`` and ``imatrix.chunk_size``, without
  which llama-quantize refuses the file. The values handed to the quantizer are
  ``in_sum2 / counts`` per expert, 1 where an expert saw no data.
* Legacy ``.dat``: int32 ``n_entries``; per entry int32 name length, the name, int32
  ``ncall``, int32 ``nval`` and ``nval`` float32 values (already ``sum / count * ncall``);
  then optionally int32 chunk count, int32 dataset-name length and the name. The values
  handed on are ``values / ncall``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.errors import HerdError

GGUF_MAGIC = b"GGUF"
_GGUF_KEYS = ("imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size")


class ImatrixError(HerdError, ValueError):
    """An importance-matrix file that cannot be read, or does not match the model."""


@dataclass(frozen=True, slots=True)
class Imatrix:
    """An importance matrix: weight name -> the float32 values llama.cpp's quantizer reads."""

    path: Path
    format: str  # "gguf" or "legacy"
    entries: dict[str, np.ndarray] = field(repr=False)
    chunk_count: int = 0
    datasets: tuple[str, ...] = ()


def read_imatrix(path: str | Path) -> Imatrix:
    """Read ``path`` in whichever format it is.

    Raises:
        ImatrixError: missing, truncated, empty or malformed.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ImatrixError(
            f"Cannot read the importance matrix {path.name}: {exc.strerror or exc}.",
            "Give the path of a file llama-imatrix wrote (.gguf or .dat).",
        ) from None
    return _read_gguf(path) if magic == GGUF_MAGIC else _read_legacy(path)


def _bad(path: Path, what: str) -> ImatrixError:
    return ImatrixError(
        f"{path.name} is not a usable importance matrix: {what}.",
        "Make it again with llama-imatrix for this model.",
    )


def _read_legacy(path: Path) -> Imatrix:
    data = path.read_bytes()
    pos = 0

    def take(fmt: str) -> tuple[int, ...]:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise _bad(path, "the file ends early")
        values = struct.unpack_from(fmt, data, pos)
        pos += size
        return values

    (n_entries,) = take("<i")
    if n_entries < 1:
        raise _bad(path, "it holds no entries")
    entries: dict[str, np.ndarray] = {}
    for _ in range(n_entries):
        (length,) = take("<i")
        if length < 1 or pos + length > len(data):
            raise _bad(path, "an entry's name is cut off")
        name = data[pos : pos + length].decode("utf-8", errors="replace")
        pos += length
        ncall, nval = take("<ii")
        if nval < 1 or pos + 4 * nval > len(data):
            raise _bad(path, f"the values of {name} are cut off")
        values = np.frombuffer(data, dtype="<f4", count=nval, offset=pos).astype(np.float32)
        pos += 4 * nval
        entries[name] = values / ncall if ncall > 0 else values.copy()
    chunks = 0
    datasets: tuple[str, ...] = ()
    if pos + 4 <= len(data):
        (chunks,) = take("<i")
        if pos + 4 <= len(data):
            (length,) = take("<i")
            if length > 0 and pos + length <= len(data):
                datasets = (data[pos : pos + length].decode("utf-8", errors="replace"),)
    return Imatrix(path, "legacy", entries, chunks, datasets)


def _read_gguf(path: Path) -> Imatrix:
    from gguf import GGMLQuantizationType, GGUFReader

    try:
        reader = GGUFReader(path)
    except (ValueError, OSError, IndexError, struct.error) as exc:
        raise _bad(path, f"its GGUF header does not parse ({exc})") from None
    missing = [k for k in _GGUF_KEYS if k not in reader.fields]
    if missing:
        raise _bad(path, f"it lacks {', '.join(missing)} (llama-quantize refuses it too)")
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for t in reader.tensors:
        for suffix, into in ((".in_sum2", sums), (".counts", counts)):
            if t.name.endswith(suffix):
                if t.tensor_type != GGMLQuantizationType.F32:
                    raise _bad(path, f"{t.name} is not F32")
                into[t.name.removesuffix(suffix)] = np.asarray(t.data, dtype=np.float32)
    if not sums and not counts:
        raise _bad(path, "it holds no entries")
    entries: dict[str, np.ndarray] = {}
    for name in sorted(set(sums) | set(counts)):
        if name not in sums or name not in counts:
            raise _bad(path, f"{name} has sums without counts or counts without sums")
        n_mat = counts[name].size
        s = sums[name].reshape(-1)
        if n_mat < 1 or s.size % n_mat:
            raise _bad(path, f"{name}'s sums do not split into {n_mat} rows")
        c = np.rint(counts[name].reshape(-1)).astype(np.float32)
        rows = s.reshape(n_mat, -1)
        safe = np.where(c > 0, c, 1.0)[:, None]
        entries[name] = np.where(c[:, None] > 0, rows / safe, 1.0).astype(np.float32).reshape(-1)
    chunk_count = int(reader.fields["imatrix.chunk_count"].contents())
    raw = reader.fields["imatrix.datasets"].contents()
    datasets = tuple(str(d) for d in raw) if isinstance(raw, list) else ()
    return Imatrix(path, "gguf", entries, chunk_count, datasets)


def expected_size(shape: tuple[int, ...]) -> int:
    """The values llama.cpp wants for a weight of ggml ``shape``: ``ne[0] * ne[2]``."""
    return shape[0] * (shape[2] if len(shape) > 2 else 1)
