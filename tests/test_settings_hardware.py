from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.hardware import GIB, Machine, detect
from edge_assistant.settings import HubSettings, Paths


def test_models_dir_follows_home(hermetic: Path) -> None:
    paths = Paths.from_env()
    assert paths.home == hermetic
    assert paths.models == hermetic / "models"


def test_models_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGE_ASSISTANT_MODELS", str(tmp_path / "elsewhere"))
    assert Paths.from_env().models == tmp_path / "elsewhere"


def test_checkout_models_dir_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_ASSISTANT_HOME")
    models = Paths.from_env().models
    assert models == Path(__file__).resolve().parent.parent / "models"


def test_hub_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = HubSettings.from_env()
    assert (hub.endpoint, hub.token, hub.offline) == ("http://127.0.0.1:9", "hf_env", True)
    assert HubSettings.from_env(token="hf_flag").token == "hf_flag"


def test_detect_reads_this_machine() -> None:
    m = detect()
    assert m.total_ram > 256 * 1024**2
    assert 0 < m.available_ram <= m.total_ram
    assert 1 <= m.physical_cores <= m.logical_cpus
    assert m.arch


def test_feature_line() -> None:
    m = Machine("aarch64", 4 * GIB, 3 * GIB, 4, 4, frozenset({"neon", "dotprod"}))
    assert m.is_arm
    assert m.feature_line() == "neon dotprod"
