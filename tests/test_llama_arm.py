"""The aarch64 build decision of scripts/install_llama.py, on /proc/cpuinfo texts recorded on real boards
(tests/data/cpuinfo, each naming its source in its header)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).parent.parent / "scripts"
CPUINFO = Path(__file__).parent / "data" / "cpuinfo"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpuinfo(name: str) -> str:
    return (CPUINFO / name).read_text()


def test_recorded_texts_name_their_source() -> None:
    for path in CPUINFO.glob("*.cpuinfo"):
        assert "https://" in path.read_text().splitlines()[1], f"{path.name}: no source on its second line"


def test_pi4_builds_for_plain_armv8() -> None:
    target = load("install_llama").arm_target(cpuinfo("raspberry-pi-4.cpuinfo"))
    assert target.board == "Raspberry Pi 4 Model B Rev 1.5"
    assert target.cores == ("Cortex-A72",)
    assert "asimddp" not in target.features
    assert target.extensions == ()
    assert target.cmake_args == "-DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH=armv8-a"


def test_pi5_builds_with_dotprod_and_fp16() -> None:
    target = load("install_llama").arm_target(cpuinfo("raspberry-pi-5.cpuinfo"))
    assert target.board == "Raspberry Pi 5 Model B Rev 1.0"
    assert target.cores == ("Cortex-A76",)
    assert target.march == "armv8.2-a+dotprod+fp16"
    assert target.cmake_args == "-DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod+fp16"
    assert target.plan_name == "Raspberry Pi 5 Model B Rev 1.0, Cortex-A76: armv8.2-a+dotprod+fp16"


def test_the_device_tree_names_the_board_first() -> None:
    target = load("install_llama").arm_target(cpuinfo("raspberry-pi-5.cpuinfo"), "Raspberry Pi 5 Model B Rev 1.1")
    assert target.board == "Raspberry Pi 5 Model B Rev 1.1"


def test_a_32_bit_kernel_is_not_an_aarch64_target() -> None:
    assert load("install_llama").arm_target(cpuinfo("raspberry-pi-cm4-32bit.cpuinfo")) is None
    assert load("install_llama").arm_target("") is None


@pytest.mark.parametrize(
    ("features", "march"),
    [
        ("fp asimd evtstrm crc32 cpuid", "armv8-a"),
        ("fp asimd asimddp", "armv8.2-a+dotprod"),
        ("fp asimd asimddp fphp", "armv8.2-a+dotprod"),  # scalar fp16 alone is not ggml's FP16 vector arithmetic
        ("fp asimd fphp asimdhp asimddp i8mm", "armv8.2-a+dotprod+fp16+i8mm"),
        ("fp asimd fphp asimdhp asimddp sve i8mm sve2 bf16", "armv8.2-a+dotprod+fp16+sve+i8mm+sve2"),
    ],
)
def test_extensions_follow_the_features(features: str, march: str) -> None:
    text = f"processor\t: 0\nFeatures\t: {features}\nCPU implementer\t: 0x41\nCPU part\t: 0xd49\n"
    target = load("install_llama").arm_target(text)
    assert target.march == march
    assert target.cores == ("Neoverse-N2",)


def test_only_features_that_every_core_has() -> None:
    big_little = (
        "processor\t: 0\nFeatures\t: fp asimd asimddp fphp asimdhp\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\n"
        "processor\t: 1\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd99\n"
    )
    target = load("install_llama").arm_target(big_little)
    assert target.march == "armv8-a"
    assert target.cores == ("Cortex-A76", "part 0xd99")


def test_aarch64_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    script = load("install_llama")
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    target = script.arm_target(cpuinfo("raspberry-pi-5.cpuinfo"))
    plans = script.plans(set(target.features), "gcc 12", target)
    assert plans == [(target.plan_name, "-DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod+fp16"), ("native", "")]
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_BLAS=ON")
    assert script.plans(set(target.features), "gcc 12", target) == [("user CMAKE_ARGS", "-DGGML_BLAS=ON")]


def test_build_key_tells_the_boards_apart() -> None:
    script = load("install_llama")
    pi4, pi5 = (script.arm_target(cpuinfo(f"raspberry-pi-{n}.cpuinfo")) for n in (4, 5))
    key4 = script.build_key(pi4.cmake_args, pi4.features, "gcc 12", machine="aarch64")
    key5 = script.build_key(pi5.cmake_args, pi5.features, "gcc 12", machine="aarch64")
    assert key4 != key5
    assert key5 != script.build_key(pi5.cmake_args, pi5.features, "gcc 12", machine="x86_64")


@pytest.mark.parametrize(("board", "defined"), [("4", set()), ("5", {"DOTPROD", "FP16_VECTOR_ARITHMETIC"})])
def test_the_chosen_arch_turns_on_ggml_feature_macros(board: str, defined: set[str]) -> None:
    """ggml compiles its dot-product kernels and repacking in only under these macros (ggml-cpu.c, repack.cpp)."""
    gcc = shutil.which("aarch64-linux-gnu-gcc")
    if gcc is None:
        pytest.skip("no aarch64 cross compiler (make check-arm installs gcc-aarch64-linux-gnu)")
    target = load("install_llama").arm_target(cpuinfo(f"raspberry-pi-{board}.cpuinfo"))
    macros = subprocess.run(
        [gcc, f"-march={target.march}", "-dM", "-E", "-x", "c", "/dev/null"], capture_output=True, text=True, check=True
    ).stdout
    wanted = {"DOTPROD", "FP16_VECTOR_ARITHMETIC", "MATMUL_INT8", "SVE"}
    assert {m for m in wanted if f"#define __ARM_FEATURE_{m} 1" in macros} == defined
