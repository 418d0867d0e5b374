"""The GGUF header parser: checks every byte llama.cpp would, before llama.cpp sees it.

Only the header is read (a few MB even for a 60 GB Llama 4 file): the parser walks it
with ``struct`` over a small look-ahead buffer and seeks over the big tokenizer arrays.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any, BinaryIO

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from app.core.errors import ModelFileError
from app.core.gguf.types import ArraySummary, TensorInfo
from app.core.units import size_text

SPLIT_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
_MAGIC = b"GGUF"
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_NAME = 64  # GGML_MAX_NAME, including the terminating NUL
_MAX_LENGTH = 1 << 30  # GGUF_MAX_STRING_LENGTH and GGUF_MAX_ARRAY_ELEMENTS
_ARRAY_KEEP = 1024  # longer arrays are summarised, not kept
_SUMMARISED = frozenset(
    f"tokenizer.ggml.{k}"
    for k in ("tokens", "merges", "scores", "token_type", "added_tokens", "precompiled_charsmap")
)
_CHUNK = 1 << 20
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_FORMATS = {
    GGUFValueType.UINT8: "B", GGUFValueType.INT8: "b", GGUFValueType.UINT16: "H",
    GGUFValueType.INT16: "h", GGUFValueType.UINT32: "I", GGUFValueType.INT32: "i",
    GGUFValueType.FLOAT32: "f", GGUFValueType.BOOL: "?", GGUFValueType.UINT64: "Q",
    GGUFValueType.INT64: "q", GGUFValueType.FLOAT64: "d",
}  # fmt: skip
_SCALARS = {t: struct.Struct("<" + f) for t, f in _FORMATS.items()}
_REDOWNLOAD = "Download the file again; a download that stopped early or a damaged disk does this."


@dataclass(frozen=True, slots=True)
class PartHeader:
    """One file's header: what a split part contributes to the model."""

    version: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    size: int
    data_offset: int
    alignment: int


def _error(path: Path, what: str, hint: str = _REDOWNLOAD) -> ModelFileError:
    return ModelFileError(f"{path.name}: {what}", hint)


def _truncated(path: Path, need: int, size: int, where: str = "") -> ModelFileError:
    return _error(
        path,
        f"the file is truncated{where}: expected at least {need} bytes, found {size}; "
        "re-download it",
        f"Only {size_text(size)} of at least {size_text(need)} is there; the download "
        "stopped early.",
    )


class _Cursor:
    """Forward-only reader over a file's header with a bounded look-ahead buffer."""

    __slots__ = ("_f", "path", "_size", "_buf", "_pos", "_base")

    def __init__(self, f: BinaryIO, path: Path, size: int) -> None:
        self._f, self.path, self._size = f, path, size
        self._buf, self._pos, self._base = b"", 0, 0

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _short(self, n: int, what: str) -> ModelFileError:
        if n > self._size:  # no truncation explains a length longer than the file
            return _error(
                self.path,
                f"the file is corrupt: {what} at byte {self.offset} claims {n} bytes, "
                f"more than the whole file ({self._size})",
            )
        return _truncated(self.path, self.offset + n, self._size, f" (it ends inside {what})")

    def need(self, n: int, what: str) -> None:
        if len(self._buf) - self._pos >= n:
            return
        if self.offset + n > self._size:
            raise self._short(n, what)
        rest = self._buf[self._pos :]
        self._base, self._pos = self._base + self._pos, 0
        self._buf = rest + self._f.read(max(n - len(rest), _CHUNK))
        if len(self._buf) < n:  # the file shrank while we read it
            raise _truncated(self.path, self.offset + n, self._base + len(self._buf))

    def skip(self, n: int, what: str) -> None:
        if n <= len(self._buf) - self._pos:
            self._pos += n
            return
        if self.offset + n > self._size:
            raise self._short(n, what)
        self._base, self._buf, self._pos = self.offset + n, b"", 0
        self._f.seek(self._base)

    def scalar(self, st: struct.Struct, what: str) -> Any:
        self.need(st.size, what)
        value = st.unpack_from(self._buf, self._pos)[0]
        self._pos += st.size
        return value

    def array(self, fmt: str, n: int, what: str) -> tuple[Any, ...]:
        st = struct.Struct(f"<{n}{fmt}")
        self.need(st.size, what)
        values = st.unpack_from(self._buf, self._pos)
        self._pos += st.size
        return values

    def string(self, what: str) -> str:
        n = self.scalar(_U64, f"the length of {what}")
        if self._size >= n > _MAX_LENGTH:
            raise _error(self.path, f"the file is corrupt: {what} is {n} bytes (at most 1 GiB)")
        self.need(n, what)
        raw = self._buf[self._pos : self._pos + n]
        self._pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int, what: str) -> None:
        # The hot loop of a big vocabulary: walk the lengths inside the buffer, refill rarely.
        unpack = _U64.unpack_from
        while count:
            self.need(8, f"the length of an item of {what}")
            buf, pos, last, done = self._buf, self._pos, len(self._buf) - 8, count
            for i in range(count):
                if pos > last:
                    done = i
                    break
                pos += 8 + unpack(buf, pos)[0]
            count -= done
            target = self._base + pos  # may lie past the buffer: a string crosses its end
            if target > self._size:
                if target > 2 * self._size:
                    raise _error(self.path, f"the file is corrupt: an item of {what} is too long")
                raise _truncated(self.path, target, self._size, f" (it ends inside {what})")
            if pos <= len(buf):
                self._pos = pos
            else:
                self._base, self._buf, self._pos = target, b"", 0
                self._f.seek(target)


def _sniff(head: bytes) -> str:
    """Say what a file that is not a GGUF looks like, from its first bytes."""
    text = head.lstrip().lower()
    if not head.strip(b"\0"):
        return "starts with only zero bytes: an unfinished or pre-allocated download"
    if head[:4] in (b"lmgg", b"fmgg", b"tjgg", b"algg"):
        return "is an old GGML/GGJT model from before GGUF (2023)"
    if head.startswith(b"PK\x03\x04"):
        return "looks like a zip archive (PyTorch .bin/.pt checkpoints are zip files too)"
    if len(head) > 8 and head[8:10] == b'{"' and _U64.unpack_from(head)[0] < 1 << 28:
        return "looks like a safetensors file (Hugging Face weights, not GGUF)"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "looks like a pickled PyTorch checkpoint"
    if head.startswith(b"\x1f\x8b"):
        return "looks like a gzip archive"
    if text.startswith(b"version https://git-lfs"):
        return "is a Git LFS pointer (a small text stub), not the model itself"
    if text.startswith((b"<!doctype html", b"<html")):
        return "looks like a web page saved in place of the model (an error or login page)"
    if text.startswith((b"{", b"[")):
        return "looks like a JSON file"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) or b >= 128 for b in head)
    if printable >= 0.95 * len(head):
        return "looks like a text file"
    return "does not start with the GGUF signature"


def _read_value(cur: _Cursor, key: str, vtype: int) -> Any:
    if vtype == GGUFValueType.STRING:
        return cur.string(f"the value of '{key}'")
    if vtype in _SCALARS:
        return cur.scalar(_SCALARS[GGUFValueType(vtype)], f"the value of '{key}'")
    if vtype != GGUFValueType.ARRAY:
        raise _error(cur.path, f"the file is corrupt: key '{key}' has unknown value type {vtype}")
    what = f"the array '{key}'"
    itype = cur.scalar(_U32, what)
    n = cur.scalar(_U64, f"the length of {what}")
    if itype == GGUFValueType.ARRAY:
        raise _error(cur.path, f"key '{key}' is an array of arrays, which llama.cpp cannot read")
    if itype != GGUFValueType.STRING and itype not in _SCALARS:
        raise _error(cur.path, f"the file is corrupt: {what} has unknown item type {itype}")
    if n > _MAX_LENGTH:
        raise _error(cur.path, f"the file is corrupt: {what} claims {n} items")
    keep = n <= _ARRAY_KEEP and key not in _SUMMARISED
    if itype == GGUFValueType.STRING:
        if keep:
            return tuple(cur.string(f"an item of {what}") for _ in range(n))
        cur.skip_strings(n, what)
    elif keep:
        return cur.array(_FORMATS[GGUFValueType(itype)], n, what)
    else:
        cur.skip(n * _SCALARS[GGUFValueType(itype)].size, what)
    return ArraySummary(GGUFValueType(itype), n)


def _read_tensor_info(cur: _Cursor, index: int, part: int) -> TensorInfo:
    path = cur.path
    name = cur.string(f"the name of tensor {index}")
    what = f"tensor '{name}'"
    if len(name.encode()) >= _MAX_NAME:
        raise _error(path, f"the file is corrupt: the name of tensor {index} is too long")
    n_dims = cur.scalar(_U32, f"the shape of {what}")
    if n_dims > _MAX_DIMS:
        raise _error(path, f"the file is corrupt: {what} has {n_dims} dimensions (at most 4)")
    shape = cur.array("q", n_dims, f"the shape of {what}")
    ggml_type = cur.scalar(_U32, f"the type of {what}")
    offset = cur.scalar(_U64, f"the offset of {what}")
    if any(d < 0 for d in shape) or prod(shape) >= 1 << 63:
        raise _error(path, f"the file is corrupt: {what} has an impossible shape {shape}")
    try:
        qtype = GGMLQuantizationType(ggml_type)
        block, type_size = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        raise _error(
            path,
            f"{what} has unknown data type {ggml_type}",
            "The file is corrupt, or it uses a quantization newer than this Herd's llama.cpp.",
        ) from None
    if (shape[0] if shape else 1) % block:
        raise _error(
            path, f"the file is corrupt: {what} rows are not a multiple of {qtype.name} blocks"
        )
    n = prod(shape)
    return TensorInfo(name, ggml_type, qtype.name, shape, n, n // block * type_size, offset, part)


def _check_magic(f: BinaryIO, path: Path, size: int) -> None:
    head = f.read(512)
    if size == 0:
        raise _error(path, "the file is empty (0 bytes)")
    if head[:4] != _MAGIC:
        raise ModelFileError(
            f"{path.name} is not a GGUF model file: it {_sniff(head)}",
            "Herd opens .gguf files; download a GGUF build of the model from the Hub.",
        )
    f.seek(0)


def read_part(path: Path, part: int) -> PartHeader:
    """Parse and validate one file's header and tensor layout."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            _check_magic(f, path, size)
            cur = _Cursor(f, path, size)
            cur.skip(4, "the header")
            version = cur.scalar(_U32, "the header")
            if version & 0xFFFF == 0:
                raise _error(path, "is a big-endian GGUF", "Herd runs little-endian files.")
            if version not in (2, 3):
                old = version < 2
                raise _error(
                    path,
                    f"uses GGUF version {version}, {'no longer' if old else 'not yet'} supported",
                    "Download a newer conversion of the model." if old else "Update Herd.",
                )
            n_tensors = cur.scalar(_U64, "the header")
            n_kv = cur.scalar(_U64, "the header")
            if 24 + 13 * n_kv + 24 * n_tensors > size:  # smallest possible entries
                if n_tensors < 1 << 20 and n_kv < 1 << 20:
                    raise _truncated(path, 24 + 13 * n_kv + 24 * n_tensors, size)
                raise _error(
                    path,
                    f"the file is corrupt: its header lists {n_tensors} tensors and {n_kv} "
                    f"metadata entries, more than a file of {size} bytes can hold",
                )
            metadata: dict[str, Any] = {}
            for i in range(n_kv):
                key = cur.string(f"metadata key {i}")
                if not key or key in metadata:
                    problem = f"'{key}' appears twice" if key else f"key {i} is empty"
                    raise _error(path, f"the file is corrupt: metadata {problem}")
                vtype = cur.scalar(_U32, f"the type of '{key}'")
                metadata[key] = _read_value(cur, key, vtype)
                if key == "general.alignment" and vtype != GGUFValueType.UINT32:
                    raise _error(path, "the file is corrupt: bad general.alignment (not a u32)")
            alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
            if alignment <= 0 or alignment & (alignment - 1):
                raise _error(path, f"the file is corrupt: bad general.alignment {alignment!r}")
            tensors = tuple(_read_tensor_info(cur, i, part) for i in range(n_tensors))
    except OSError as exc:
        raise _error(path, f"cannot be read ({exc.strerror or exc})", "Check the disk.") from exc
    data_offset = -(-cur.offset // alignment) * alignment if tensors else cur.offset
    _check_layout(path, tensors, size, data_offset, alignment)
    return PartHeader(version, metadata, tensors, size, data_offset, alignment)


def _check_layout(
    path: Path, tensors: tuple[TensorInfo, ...], size: int, data_offset: int, alignment: int
) -> None:
    """Tensors must sit back to back in order, aligned, inside the file (as llama.cpp wants)."""
    seen: set[str] = set()
    expected = 0
    for t in tensors:
        if t.name in seen:
            raise _error(path, f"the file is corrupt: tensor '{t.name}' appears twice")
        seen.add(t.name)
        if t.offset % alignment:
            raise _error(
                path,
                f"the file is corrupt: tensor '{t.name}' starts at data offset {t.offset}, "
                f"not a multiple of the alignment ({alignment})",
            )
        if t.offset != expected:
            raise _error(
                path,
                f"the file is corrupt: tensor '{t.name}' starts at data offset {t.offset}, "
                f"expected {expected} (tensors overlap or leave gaps)",
            )
        expected += -(-t.n_bytes // alignment) * alignment
    need = data_offset + (tensors[-1].offset + tensors[-1].n_bytes if tensors else 0)
    if need > size:
        raise _truncated(path, need, size)


def split_parts(path: str | os.PathLike[str]) -> tuple[Path, ...]:
    """All parts of the model ``path`` belongs to, first part first; checks they exist.

    Raises:
        ModelFileError: the file or one of its parts is missing, or is a folder.
    """
    p = Path(path)
    if p.is_dir():
        raise ModelFileError(f"{p} is a folder, not a model file", "Choose the .gguf file in it.")
    if not p.is_file():
        raise ModelFileError(f"Model file not found: {p}", "Check the path, or download it again.")
    m = SPLIT_RE.search(p.name)
    if not m:
        return (p,)
    index, count = int(m.group(1)), int(m.group(2))
    if not 1 <= index <= count:
        raise _error(p, f"has an impossible part number ({index} of {count})", "Rename it.")
    prefix = p.name[: m.start()]
    parts = tuple(p.with_name(f"{prefix}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1))
    missing = [q for q in parts if not q.is_file()]
    if missing:
        number = parts.index(missing[0]) + 1
        raise ModelFileError(
            f"{prefix}: part {number} of {count} is missing: {missing[0].name}",
            f"All {count} parts must be in the same folder; download the missing "
            f"{'part' if len(missing) == 1 else f'{len(missing)} parts'}.",
        )
    return parts


def check_split(parts: tuple[Path, ...], read: list[PartHeader]) -> None:
    """Check that the parts of a split model agree on their numbering and tensor count."""
    count = len(parts)
    first = read[0].metadata
    if count == 1:
        if int(first.get("split.count", 1)) > 1:
            raise _error(
                parts[0],
                f"is one part of a {first['split.count']}-part model, but its name does not "
                "end in -00001-of-0000N.gguf, so the other parts cannot be found",
                "Restore the original file names.",
            )
        return
    for i, (path, part) in enumerate(zip(parts, read, strict=True)):
        no, n = part.metadata.get("split.no"), part.metadata.get("split.count")
        if no != i or n != count:
            raise _error(path, f"says it is part {no} of {n}, not part {i} of {count}")
    total, want = len({t.name for p in read for t in p.tensors}), first.get("split.tensors.count")
    if total != sum(len(p.tensors) for p in read) or (want is not None and want != total):
        raise _error(parts[0], f"the parts hold {total} distinct tensors, expected {want}")
