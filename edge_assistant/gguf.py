"""A small GGUF header reader: metadata and a size check, without loading weights.

Reading the header ourselves lets us reject a file that is not GGUF, or is
truncated, with a clear message before llama.cpp ever sees it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

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
STRING, ARRAY = 8, 9
# Keys whose (large) array values we skip rather than keep.
SKIP_ARRAYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges")


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
    def __init__(self, f: BinaryIO, path: Path) -> None:
        self.f, self.path = f, path

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ModelFileError(f"{self.path} is truncated: its GGUF header ends early")
        return data

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        if n > 1 << 26:
            raise ModelFileError(f"{self.path} is corrupt: a header string claims {n} bytes")
        return self.take(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, keep: bool = True) -> Any:
        if vtype in SCALARS:
            return self.scalar(SCALARS[vtype])
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            item_type, count = self.scalar("<I"), self.scalar("<Q")
            if item_type in SCALARS and not keep:
                self.f.seek(struct.calcsize(SCALARS[item_type]) * count, 1)
                return None
            items = [self.value(item_type, keep) for _ in range(count)]
            return items if keep else None
        raise ModelFileError(f"{self.path} is corrupt: unknown GGUF value type {vtype}")


def read_gguf(path: str | Path, arrays: bool = False) -> GgufInfo:
    """Parse the header of a GGUF file; raise ModelFileError if it is not GGUF or is damaged.

    The tokenizer's large arrays (tokens, scores, types, merges) are skipped unless `arrays`.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        f = path.open("rb")
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror}") from None
    with f:
        r = _Reader(f, path)
        if f.read(4) != MAGIC:
            raise ModelFileError(f"{path} is not a GGUF model file")
        version = r.scalar("<I")
        if version not in (2, 3):
            raise ModelFileError(f"{path} has unsupported GGUF version {version}")
        n_tensors, n_kv = r.scalar("<Q"), r.scalar("<Q")
        if n_tensors > 1 << 20 or n_kv > 1 << 20:
            raise ModelFileError(f"{path} is corrupt: implausible GGUF header counts")
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = r.string()
            vtype = r.scalar("<I")
            value = r.value(vtype, keep=arrays or key not in SKIP_ARRAYS)
            if value is not None:
                metadata[key] = value
        end: int | None = 0
        tensors: list[TensorInfo] = []
        for _ in range(n_tensors):
            name = r.string()
            dims = [r.scalar("<Q") for _ in range(r.scalar("<I"))]
            ttype, offset = r.scalar("<I"), r.scalar("<Q")
            elements = 1
            for d in dims:
                elements *= d
            data = elements // TYPE_SIZES[ttype][0] * TYPE_SIZES[ttype][1] if ttype in TYPE_SIZES else None
            tensors.append(TensorInfo(name, tuple(dims), ttype, data))
            if data is None or end is None:
                end = None
                continue
            end = max(end, offset + data)
        align = int(metadata.get("general.alignment", 32))
        header_end = f.tell()
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
