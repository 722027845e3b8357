"""Build small valid GGUF files for tests (one F32 tensor of the requested size)."""

from __future__ import annotations

import struct
from pathlib import Path


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def make_gguf(data_bytes: int, seed: int = 0, arch: str = "llama") -> bytes:
    """A GGUF v3 file whose tensor data is `data_bytes` (a multiple of 4) of pseudo-random bytes."""
    assert data_bytes % 4 == 0
    kv = _string("general.architecture") + struct.pack("<I", 8) + _string(arch)
    kv += _string(f"{arch}.context_length") + struct.pack("<I", 4) + struct.pack("<I", 2048)
    tensor = _string("t") + struct.pack("<I", 1) + struct.pack("<Q", data_bytes // 4) + struct.pack("<IQ", 0, 0)
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + kv + tensor
    header += b"\0" * (-len(header) % 32)
    block = bytes((i * 131 + seed * 17 + (i >> 8)) & 0xFF for i in range(4096))
    body = (block * (data_bytes // len(block) + 1))[:data_bytes]
    return header + body


U8, U32, I32, STR, ARR, U64 = 0, 4, 5, 8, 9, 10


def kv(key: str, vtype: int, payload: bytes) -> bytes:
    """One metadata entry: key, value type, encoded value."""
    return _string(key) + struct.pack("<I", vtype) + payload


def string_value(text: str) -> bytes:
    return _string(text)


def array_value(item_type: int, count: int, items: bytes = b"") -> bytes:
    return struct.pack("<IQ", item_type, count) + items


def header(*entries: bytes, tensors: int = 0, tensor_info: bytes = b"") -> bytes:
    """A GGUF v3 header holding `entries` (made with `kv`) and `tensors` tensor records."""
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, len(entries)) + b"".join(entries) + tensor_info


def tensor(name: str, dims: list[int], ttype: int = 0, offset: int = 0) -> bytes:
    return (
        _string(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", ttype, offset)
    )


_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _skip_value(data: bytes, pos: int, vtype: int) -> int:
    if vtype in _SIZES:
        return pos + _SIZES[vtype]
    if vtype == STR:
        return pos + 8 + struct.unpack_from("<Q", data, pos)[0]
    item, count = struct.unpack_from("<IQ", data, pos)
    pos += 12
    if item in _SIZES:
        return pos + _SIZES[item] * count
    for _ in range(count):
        pos = _skip_value(data, pos, item)
    return pos


def with_chat_template(src: Path, dst: Path, template: str) -> Path:
    """A copy of the GGUF `src` whose tokenizer.chat_template is `template` (the tensor data moved to stay
    aligned)."""
    data = src.read_bytes()
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    pos, out = 24, bytearray(data[:24])
    for _ in range(n_kv):
        start = pos
        key_len = struct.unpack_from("<Q", data, pos)[0]
        key = data[pos + 8 : pos + 8 + key_len].decode()
        pos += 8 + key_len
        vtype = struct.unpack_from("<I", data, pos)[0]
        end = _skip_value(data, pos + 4, vtype)
        if key == "tokenizer.chat_template":
            out += kv(key, STR, string_value(template))
        else:
            out += data[start:end]
        pos = end
    for _ in range(n_tensors):
        start = pos
        pos += 8 + struct.unpack_from("<Q", data, pos)[0]
        n_dims = struct.unpack_from("<I", data, pos)[0]
        pos += 4 + 8 * n_dims + 12
        out += data[start:pos]
    old_start = pos + (-pos % 32)
    out += b"\0" * (-len(out) % 32)
    dst.write_bytes(bytes(out) + data[old_start:])
    return dst
