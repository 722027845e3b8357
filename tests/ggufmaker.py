"""Build small valid GGUF files for tests (one F32 tensor of the requested size)."""

from __future__ import annotations

import struct


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
