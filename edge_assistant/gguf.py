"""A small GGUF header reader: metadata and a size check, without loading weights.

Reading the header ourselves lets us reject a file that is not GGUF, or is
truncated, with a clear message before llama.cpp ever sees it.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelFileError

MAGIC = b"GGUF"
QK_K = 256
# ggml type id -> (elements per block, bytes per block), as in gguf-py's GGML_QUANT_SIZES.
TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 36),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
    40: (64, 36),
    41: (128, 18),
    42: (64, 18),
}
# GGUF value types: id -> struct format for scalars; 8 = string, 9 = array.
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
INTEGERS = (0, 1, 2, 3, 4, 5, 10, 11)
STRING, ARRAY, UINT32 = 8, 9, 4
# Keys whose (large) array values we skip rather than keep.
SKIP_ARRAYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges")
KEEP_ITEMS = 4096
"""Longer arrays are skipped, not kept: nothing we read from a header needs more."""
KEEP_STRING = 1 << 20
"""Longer strings are skipped, not kept (a chat template is a few kB)."""
KEEP_BUDGET = 16 << 20
"""Bytes of metadata kept in all; beyond it values are skipped (bounded memory whatever the header claims)."""
MAX_DIMS, MAX_NAME = 4, 64
"""As llama.cpp: a tensor has at most 4 dimensions and a name shorter than 64 bytes."""
MAX_ELEMENTS = 1 << 62
LENGTH = struct.Struct("<Q")


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table."""

    name: str
    dims: tuple[int, ...]
    """ggml order: the fastest-varying dimension first."""
    type: int
    """ggml type id."""
    nbytes: int | None
    """Bytes of data; None when the type is unknown here."""


@dataclass(frozen=True)
class GgufInfo:
    """What the header of a GGUF file says."""

    path: Path
    version: int
    metadata: dict[str, Any] = field(repr=False)
    tensor_count: int
    file_bytes: int
    """Actual size of the file on disk."""
    expected_bytes: int | None
    """Size implied by the tensor table; None when a tensor type is unknown."""
    tensors: tuple[TensorInfo, ...] = field(default=(), repr=False)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return str(value) if value is not None else None

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if value is not None else None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return str(value) if value else None

    @property
    def truncated(self) -> bool:
        return self.expected_bytes is not None and self.file_bytes < self.expected_bytes


class _Reader:
    """Reads a header from a memory map: nothing is copied that is not kept, every length is checked against the
    bytes that are left, so a crafted header costs neither memory nor time."""

    def __init__(self, buf: Any, path: Path, everything: bool = False) -> None:
        self.buf, self.path, self.pos = buf, path, 0
        self.kept = 0
        self.everything = everything
        """Keep every value, however large (a trusted file's tokenizer)."""

    def corrupt(self, why: str) -> ModelFileError:
        return ModelFileError(f"{self.path} is corrupt: {why}")

    @property
    def left(self) -> int:
        return len(self.buf) - self.pos

    def skip(self, n: int) -> None:
        if n > self.left:
            raise ModelFileError(f"{self.path} is truncated: its GGUF header ends early")
        self.pos += n

    def scalar(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        start = self.pos
        self.skip(size)
        return struct.unpack_from(fmt, self.buf, start)[0]

    def string(self, keep: bool = True) -> str | None:
        n = self.scalar("<Q")
        start = self.pos
        self.skip(n)
        if not keep or (not self.everything and (n > KEEP_STRING or self.kept + n > KEEP_BUDGET)):
            return None
        self.kept += n
        return bytes(self.buf[start : start + n]).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Step over `count` strings (a tokenizer's vocabulary) without decoding or keeping them."""
        buf, pos, end, length = self.buf, self.pos, len(self.buf), LENGTH.unpack_from
        for _ in range(count):
            if pos + 8 > end:
                break
            pos += 8 + length(buf, pos)[0]
        else:
            if pos <= end:
                self.pos = pos
                return
        raise ModelFileError(f"{self.path} is truncated: its GGUF header ends early")

    def value(self, vtype: int, keep: bool = True) -> Any:
        if vtype in SCALARS:
            return self.scalar(SCALARS[vtype])
        if vtype == STRING:
            return self.string(keep)
        if vtype != ARRAY:
            raise self.corrupt(f"unknown GGUF value type {vtype}")
        item_type, count = self.scalar("<I"), self.scalar("<Q")
        if item_type == ARRAY:
            raise self.corrupt("an array of arrays (GGUF does not allow nested arrays)")
        if item_type != STRING and item_type not in SCALARS:
            raise self.corrupt(f"unknown GGUF value type {item_type} in an array")
        least = 8 if item_type == STRING else struct.calcsize(SCALARS[item_type])
        if count * least > self.left:
            raise self.corrupt(f"an array claims {count:,} items, more than the file holds")
        keep = keep and (self.everything or (count <= KEEP_ITEMS and self.kept + count * 8 <= KEEP_BUDGET))
        if item_type != STRING and not keep:
            self.skip(count * least)
            return None
        if not keep:
            self.skip_strings(count)
            return None
        self.kept += count * 8
        return [self.value(item_type) for _ in range(count)]


# What the keys we read must hold: (the value types allowed, what to call them).
EXPECTED = {
    "general.alignment": ((UINT32,), "a uint32"),
    "general.architecture": ((STRING,), "a string"),
    "general.name": ((STRING,), "a string"),
    "tokenizer.chat_template": ((STRING,), "a string"),
}


def _check_type(r: _Reader, key: str, vtype: int) -> None:
    allowed, what = EXPECTED.get(key) or (((*INTEGERS,), "an integer") if key.endswith(".context_length") else ((), ""))
    if allowed and vtype not in allowed:
        raise r.corrupt(f"{key} must be {what}, not GGUF type {vtype}")


def _metadata(r: _Reader, n_kv: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    seen: set[str] = set()
    for _ in range(n_kv):
        key = r.string()
        if key is None:
            raise r.corrupt("a metadata key is implausibly long")
        if key in seen:
            raise r.corrupt(f"the key {key} appears twice")
        seen.add(key)
        vtype = r.scalar("<I")
        _check_type(r, key, vtype)
        value = r.value(vtype, keep=r.everything or key not in SKIP_ARRAYS)
        if key.endswith(".context_length") and value < 0:
            raise r.corrupt(f"{key} is negative")
        if value is not None:
            metadata[key] = value
    align = metadata.get("general.alignment", 32)
    if align <= 0 or align & (align - 1):
        raise r.corrupt(f"general.alignment {align} is not a power of two")
    return metadata


def _tensors(r: _Reader, n_tensors: int) -> tuple[int | None, list[TensorInfo]]:
    """The tensor table, and where the last tensor's data ends relative to the data section (None when a tensor
    type is unknown)."""
    end: int | None = 0
    tensors: list[TensorInfo] = []
    names: set[str] = set()
    for _ in range(n_tensors):
        name = r.string()
        if name is None or len(name.encode()) >= MAX_NAME:
            raise r.corrupt(f"a tensor name is {MAX_NAME} bytes or longer")
        if name in names:
            raise r.corrupt(f"the tensor {name} appears twice")
        names.add(name)
        n_dims = r.scalar("<I")
        if n_dims > MAX_DIMS:
            raise r.corrupt(f"the tensor {name} has {n_dims} dimensions (at most {MAX_DIMS})")
        dims = tuple(r.scalar("<Q") for _ in range(n_dims))
        elements = 1
        for d in dims:
            elements *= d
        if elements > MAX_ELEMENTS:
            raise r.corrupt(f"the tensor {name} claims {elements:,} elements")
        ttype, offset = r.scalar("<I"), r.scalar("<Q")
        data = elements // TYPE_SIZES[ttype][0] * TYPE_SIZES[ttype][1] if ttype in TYPE_SIZES else None
        tensors.append(TensorInfo(name, dims, ttype, data))
        if data is None or end is None:
            end = None
            continue
        end = max(end, offset + data)
    return end, tensors


def read_gguf(path: str | Path, arrays: bool = False) -> GgufInfo:
    """Parse the header of a GGUF file; raise ModelFileError if it is not GGUF, truncated or corrupt.

    Memory and time are bounded whatever the header claims: the file is mapped, not read, every count is
    checked against the bytes left, and large values are skipped rather than kept.

    The tokenizer's large arrays (tokens, scores, types, merges) are skipped unless `arrays`, which also lifts
    the bounds: only for a file this program made or already checked.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ModelFileError(f"{path} is not a GGUF model file (not a regular file)")
            if size < 4 + 4 + 8 + 8:
                if f.read(4) != MAGIC:
                    raise ModelFileError(f"{path} is not a GGUF model file")
                raise ModelFileError(f"{path} is truncated: its GGUF header ends early")
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    with buf:
        return _parse(_Reader(buf, path, everything=arrays), path, size)


def _parse(r: _Reader, path: Path, size: int) -> GgufInfo:
    if bytes(r.buf[:4]) != MAGIC:
        raise ModelFileError(f"{path} is not a GGUF model file")
    r.pos = 4
    version = r.scalar("<I")
    if version not in (2, 3):
        raise ModelFileError(f"{path} has unsupported GGUF version {version}")
    n_tensors, n_kv = r.scalar("<Q"), r.scalar("<Q")
    if n_tensors > 1 << 20 or n_kv > 1 << 20:
        raise r.corrupt("implausible GGUF header counts")
    metadata = _metadata(r, n_kv)
    end, tensors = _tensors(r, n_tensors)
    header_end = r.pos
    align = int(metadata.get("general.alignment", 32))
    data_start = -(-header_end // align) * align
    if n_tensors == 0:
        expected: int | None = header_end
    else:
        expected = data_start + end if end is not None else None
    return GgufInfo(path, version, metadata, n_tensors, size, expected, tuple(tensors))


def check_gguf(path: str | Path) -> GgufInfo:
    """Read the header and reject a truncated file with the sizes in the message."""
    info = read_gguf(path)
    if info.truncated:
        raise ModelFileError(
            f"{info.path} is truncated: {info.file_bytes:,} bytes of {info.expected_bytes:,}; pull it again"
        )
    return info


def bytes_per_token(info: GgufInfo) -> int:
    """Weight bytes one generated token reads: every matrix once, but of the token embedding only one row,
    unless it doubles as the output projection (tied embeddings, no output.weight)."""
    names = {t.name for t in info.tensors}
    total = 0
    for t in info.tensors:
        if t.nbytes is None:
            raise ModelFileError(f"{info.path.name}: tensor {t.name} has a type this reader does not know")
        if t.name == "token_embd.weight" and "output.weight" in names:
            total += t.nbytes // max(1, t.dims[-1])
        else:
            total += t.nbytes
    return total
