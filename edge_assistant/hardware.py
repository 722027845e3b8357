"""What this machine offers: memory, cores, CPU features, architecture."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3
# CPU features that matter to llama.cpp, by the names /proc/cpuinfo uses.
FEATURES = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "neon",
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
)


@dataclass(frozen=True)
class Machine:
    """A snapshot of the machine's resources."""

    arch: str
    """Machine architecture, e.g. x86_64 or aarch64."""
    total_ram: int
    """Bytes of physical memory."""
    available_ram: int
    """Bytes of memory available for new work (MemAvailable)."""
    physical_cores: int
    logical_cpus: int
    features: frozenset[str]
    """Features of FEATURES this CPU has; on aarch64 'neon' and 'dotprod' are normalised names."""

    @property
    def is_arm(self) -> bool:
        return self.arch in ("aarch64", "arm64", "armv7l")

    def feature_line(self) -> str:
        shown = [
            f
            for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile", "neon", "dotprod", "i8mm", "sve")
            if f in self.features
        ]
        return " ".join(shown) or "none of avx2/avx512/neon"


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                out[key] = int(parts[0]) * (1024 if parts[-1] == "kB" else 1)
    except OSError:
        pass
    return out


def _cpuinfo() -> tuple[set[str], int]:
    """CPU flags and the number of physical cores (0 when unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set(), 0
    flags: set[str] = set()
    cores: set[tuple[str, str]] = set()
    phys = core = ""
    for line in text.splitlines():
        key, _, value = (s.strip() for s in line.partition(":"))
        if key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
            cores.add((phys, core))
    return flags, len(cores)


def detect() -> Machine:
    """Read the machine's resources now."""
    mem = _meminfo()
    total = mem.get("MemTotal") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    available = mem.get("MemAvailable", total)
    flags, cores = _cpuinfo()
    logical = os.cpu_count() or 1
    arch = platform.machine().lower()
    features = {f for f in FEATURES if f in flags}
    if arch in ("aarch64", "arm64"):
        features.add("neon")
        if "asimddp" in flags:
            features.add("dotprod")
    return Machine(
        arch=arch,
        total_ram=total,
        available_ram=available,
        physical_cores=cores or logical,
        logical_cpus=logical,
        features=frozenset(features),
    )


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()
