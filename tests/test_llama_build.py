"""The installed llama.cpp build must work on this machine: a broken build fails here, not for users."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import load_script


def test_generates_from_a_multi_token_prompt(smollm2: Path) -> None:
    # In a child process: a miscompiled build dies with SIGILL, which must fail the test, not kill pytest.
    script = load_script()
    proc = subprocess.run(
        [sys.executable, "-c", script.SMOKE, str(smollm2)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"llama.cpp build is broken on this machine (exit {proc.returncode}): {proc.stderr}"
    assert "Paris" in proc.stdout


def test_the_dead_store_flags_keep_the_amx_tile_config() -> None:
    """Compile ggml's AMX tile setup: the keep-AMX flags must leave the config stores before ldtilecfg in place
    (gcc 12 without them drops the rows/colsb stores: the miscompile behind the SIGILL). No AMX CPU needed."""
    script = load_script()
    fixed = script.tile_config_kept(script.KEEP_AMX)
    if fixed is None:
        pytest.skip("the C++ compiler here cannot target sapphirerapids")
    assert fixed is True
    compiler = subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout
    if "(Debian 12." in compiler:
        assert script.tile_config_kept() is False, "gcc 12 was expected to drop the stores without the flags"


@pytest.mark.parametrize(
    ("kept", "first"),
    [
        ({"": True}, "native (AMX)"),
        ({"": False, "keep": True}, "native, AMX kept (dead-store elimination off)"),
        ({"": False, "keep": False}, "native without AMX"),
    ],
)
def test_plans_on_amx_machines(monkeypatch: pytest.MonkeyPatch, kept: dict[str, bool], first: str) -> None:
    script = load_script()
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    monkeypatch.setattr(script.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(script, "tile_config_kept", lambda cflags="", cxx=None: kept["keep" if cflags else ""])
    plans = script.plans({"avx512f", "amx_tile", "amx_int8"}, "gcc 12")
    assert plans[0][0] == first
    assert plans[-1][1] == (
        "-DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' "
        "-DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'"
    )


def test_plans_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_script()
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
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
