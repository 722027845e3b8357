from __future__ import annotations

import re
import shutil
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.errors import ModelFileError
from edge_assistant.gguf import check_gguf, read_gguf
from tests.ggufmaker import ARR, I32, STR, U8, U32, array_value, header, kv, string_value, tensor
from tests.helpers import run

MIB = 1024 * 1024


def test_reads_the_embedded_smollm2_header(smollm2: Path) -> None:
    info = check_gguf(smollm2)
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert info.tensor_count > 0
    assert info.expected_bytes == info.file_bytes == smollm2.stat().st_size


def test_truncated_file_is_named_with_sizes(smollm2: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with smollm2.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(smollm2.stat().st_size // 2))
    assert read_gguf(cut).truncated
    with pytest.raises(ModelFileError, match=r"truncated: [\d,]+ bytes of [\d,]+"):
        check_gguf(cut)


def test_header_cut_short_is_truncated(smollm2: Path, tmp_path: Path) -> None:
    cut = tmp_path / "head.gguf"
    cut.write_bytes(smollm2.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="truncated"):
        check_gguf(cut)


@pytest.mark.parametrize("content", [b"", b"hello world, not a model", b"GGML" + b"\0" * 100])
def test_not_gguf(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a GGUF model file"):
        check_gguf(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        check_gguf(tmp_path / "nope.gguf")


def test_corrupt_counts(smollm2: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    shutil.copy(smollm2, bad)
    with bad.open("r+b") as f:
        f.seek(16)
        f.write((1 << 40).to_bytes(8, "little"))
    with pytest.raises(ModelFileError, match="corrupt"):
        check_gguf(bad)


# -- hostile headers ------------------------------------------------------------------------------------------
ARCH = kv("general.architecture", STR, string_value("llama"))


def _nested(depth: int) -> bytes:
    return b"".join(struct.pack("<IQ", ARR, 1) for _ in range(depth)) + struct.pack("<IQ", U8, 0)


HOSTILE = {
    "alignment 0": (header(ARCH, kv("general.alignment", U32, struct.pack("<I", 0))), "not a power of two"),
    "alignment 24": (header(ARCH, kv("general.alignment", U32, struct.pack("<I", 24))), "not a power of two"),
    "huge array count": (header(ARCH, kv("x.list", ARR, array_value(U8, 1 << 40))), "more than the file holds"),
    "huge string array": (
        header(ARCH, kv("x.names", ARR, array_value(STR, 1 << 60))),
        "more than the file holds",
    ),
    "nested arrays": (header(ARCH, kv("x.deep", ARR, _nested(100_000))), "nested arrays"),
    "string for alignment": (
        header(ARCH, kv("general.alignment", STR, string_value("thirty-two"))),
        "general.alignment must be a uint32",
    ),
    "string for context": (
        header(ARCH, kv("llama.context_length", STR, string_value("8k"))),
        "llama.context_length must be an integer",
    ),
    "negative context": (header(ARCH, kv("llama.context_length", I32, struct.pack("<i", -1))), "is negative"),
    "duplicate key": (header(ARCH, ARCH), "appears twice"),
    "five dimensions": (header(ARCH, tensors=1, tensor_info=tensor("t", [2, 2, 2, 2, 2])), "5 dimensions"),
    "long tensor name": (header(ARCH, tensors=1, tensor_info=tensor("t" * 80, [4])), "tensor name is 64 bytes"),
    "too many elements": (header(ARCH, tensors=1, tensor_info=tensor("t", [1 << 40, 1 << 40])), "elements"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_header_is_one_line_naming_the_file(tmp_path: Path, case: str) -> None:
    data, why = HOSTILE[case]
    path = tmp_path / "crafted.gguf"
    path.write_bytes(data + bytes(64))
    with pytest.raises(ModelFileError, match=f"^{re.escape(str(path))} is corrupt: .*{re.escape(why)}"):
        check_gguf(path)
    code, out, err = run("ask", "-m", str(path), "hi")
    assert code == 1 and out == ""
    assert err.startswith(f"error: {path} is corrupt: ") and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("item", ["u8", "string"])
def test_a_large_array_in_a_header_is_read_in_bounded_memory(tmp_path: Path, item: str) -> None:
    if item == "u8":
        values = array_value(U8, 20 * MIB, bytes(20 * MIB))
    else:  # empty strings, 8 bytes each (smaller: memory tracing slows the walk over them twentyfold)
        values = array_value(STR, 5 * MIB // 8, bytes(5 * MIB))
    path = tmp_path / "big-array.gguf"
    path.write_bytes(header(ARCH, kv("x.big", ARR, values)))
    tracemalloc.start()
    try:
        info = check_gguf(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.architecture == "llama" and "x.big" not in info.metadata
    assert peak < 4 * MIB, f"reading the header took {peak / MIB:.0f} MiB"


@pytest.fixture(scope="module")
def real_header(smollm2: Path) -> tuple[bytes, int, int]:
    """The embedded SmolLM2 GGUF's header and a little more, where its tensor table starts, and its size."""
    with smollm2.open("rb") as f:
        head = f.read(2 * MIB)
    table = head.find(b"token_embd.weight") - 8  # the first tensor record (its name's length comes first)
    assert table > 0
    return head, table, smollm2.stat().st_size


def _mutations(size: int, table: int) -> st.SearchStrategy[list[tuple[int, bytes]]]:
    """Byte flips anywhere; extreme little-endian integers (counts, lengths, types) where the structure is: the
    first key-value pairs and the tensor table."""
    flips = st.tuples(st.integers(0, size - 1), st.binary(min_size=1, max_size=1))
    extremes = st.sampled_from([0, 1, 9, 12, 13, 0xFF, 1 << 31, (1 << 32) - 1, 1 << 40, (1 << 63) - 1, (1 << 64) - 1])
    where = st.one_of(st.integers(0, 4096), st.integers(table, min(size, table + 20_000) - 8))
    wide = st.tuples(where, extremes.map(lambda v: struct.pack("<Q", v)))
    return st.lists(st.one_of(flips, wide), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_real_header_is_never_a_traceback(
    real_header: tuple[bytes, int, int], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    head, table, full_size = real_header
    blob = bytearray(head)
    for position, value in data.draw(_mutations(len(blob), table), label="mutations"):
        blob[position : position + len(value)] = value
    keep = data.draw(st.integers(16, len(blob)), label="cut") if data.draw(st.booleans(), label="cut?") else len(blob)
    path = tmp_path_factory.mktemp("fuzz") / "m.gguf"
    with path.open("wb") as f:
        f.write(blob[:keep])
        f.truncate(full_size if keep == len(blob) else keep)  # sparse: the real size, no disk used
    tracemalloc.start()
    try:
        try:
            check_gguf(path)
        except ModelFileError as exc:
            assert str(exc).startswith((str(path), "model file not found")), exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        path.unlink()
    assert peak < 64 * MIB, f"a mutated header took {peak / MIB:.0f} MiB"
