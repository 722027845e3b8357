"""The installed llama.cpp build must work on this machine: a broken build fails here, not for users."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parent.parent / "scripts" / "install_llama.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_llama", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generates_from_a_multi_token_prompt(smollm2: Path) -> None:
    # In a child process: a miscompiled build dies with SIGILL, which must fail the test, not kill pytest.
    script = load_script()
    proc = subprocess.run(
        [sys.executable, "-c", script.SMOKE, str(smollm2)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"llama.cpp build is broken on this machine (exit {proc.returncode}): {proc.stderr}"
    assert "Paris" in proc.stdout


def test_amx_machines_with_gcc_keep_amx_then_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_script()
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    monkeypatch.setattr(script.platform, "machine", lambda: "x86_64")
    plans = script.plans({"avx512f", "amx_tile", "amx_int8"}, "gcc (Debian 12.2.0-14) 12.2.0")
    assert [p[1] for p in plans] == [
        "-DCMAKE_C_FLAGS='-fno-tree-dse -fno-dse' -DCMAKE_CXX_FLAGS='-fno-tree-dse -fno-dse'",
        "-DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' "
        "-DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'",
    ]
    assert script.plans({"avx512f", "avx2"}, "gcc 12") == [("native", "")]
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_BLAS=ON")
    assert script.plans({"amx_tile"}, "gcc 12") == [("user CMAKE_ARGS", "-DGGML_BLAS=ON")]


def test_build_key_changes_with_flags() -> None:
    script = load_script()
    a = script.build_key("", {"avx2"}, "gcc 12")
    assert a == script.build_key("", {"avx2"}, "gcc 12")
    assert a != script.build_key("-DX=1", {"avx2"}, "gcc 12")
    assert a != script.build_key("", {"avx2", "amx_tile"}, "gcc 12")
    assert a != script.build_key("", {"avx2"}, "gcc 13")
