from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_assistant.errors import ModelFileError
from edge_assistant.gguf import check_gguf, read_gguf


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
