#!/usr/bin/env python3
"""Build llama.cpp's own llama-bench from the same source and flags as the installed llama-cpp-python.

The llama-cpp-python sdist vendors llama.cpp; `scripts/install_llama.py` built the venv's library from it with
the CMAKE_ARGS recorded in <venv>/.llama-build.json. This script configures that same vendored tree the same
way (Release, shared libraries, common library on, curl off, GGML_NATIVE left at its default, the recorded
CMAKE_ARGS) and builds only the `llama-bench` target, once per build key, into

    <cache_root>/native/<key>/src          the extracted vendor/llama.cpp
    <cache_root>/native/<key>/build        the CMake build tree
    <cache_root>/native/<key>/bin          -> build/bin (llama-bench and its shared libraries)
    <cache_root>/native/<key>/native.json  what was built, from what, how

The binary's path goes to stdout; progress goes to stderr. A second run with the same key and sdist is instant.

Usage: build_llama_bench.py [--python PY] [--force]
Only the standard library is used.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import ModuleType
from typing import IO, Any

HERE = Path(__file__).resolve().parent
DEFAULT_PYTHON = HERE.parent / ".venv" / "bin" / "python"

# What llama-cpp-python's top-level CMakeLists.txt forces when it add_subdirectory()s vendor/llama.cpp
# (BUILD_SHARED_LIBS, LLAMA_BUILD_COMMON, LLAMA_CURL), plus what we need to get llama-bench and nothing else.
# GGML_NATIVE, GGML_OPENMP, GGML_LLAMAFILE... keep their defaults, which are the same in both configurations.
BASE_CMAKE_ARGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DLLAMA_BUILD_COMMON=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_APP=OFF",
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_installer() -> ModuleType:
    path = HERE / "install_llama.py"
    spec = importlib.util.spec_from_file_location("install_llama", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def llama_cpp_commit(changelog: str, version: str) -> str | None:
    """The llama.cpp commit that this llama-cpp-python release vendors, from its CHANGELOG entry."""
    section = re.search(rf"^## \[{re.escape(version)}\](.*?)(?=^## \[|\Z)", changelog, re.M | re.S)
    if section is None:
        return None
    found = re.search(r"llama\.cpp@([0-9a-f]{7,40})", section.group(1))
    return found.group(1) if found else None


def extract_vendor(sdist: Path, dest: Path, sdist_sha: str) -> str:
    """Extract vendor/llama.cpp from the sdist into dest (once per sdist); return the sdist's CHANGELOG text."""
    marker = dest / ".sdist-sha256"
    changelog = ""
    fresh = dest.is_dir() and marker.is_file() and marker.read_text().strip() == sdist_sha
    with tarfile.open(sdist, "r:gz") as tar:
        members = tar.getmembers()
        roots = {m.name.split("/", 1)[0] for m in members}
        if len(roots) != 1:
            raise SystemExit(f"error: unexpected layout in {sdist}")
        root = roots.pop()
        log_member = tar.extractfile(f"{root}/CHANGELOG.md") if f"{root}/CHANGELOG.md" in tar.getnames() else None
        if log_member is not None:
            changelog = log_member.read().decode("utf-8", "replace")
        if fresh:
            return changelog
        prefix = f"{root}/vendor/llama.cpp/"
        wanted = []
        for member in members:
            if member.name.startswith(prefix) and member.name != prefix:
                member.name = member.name[len(prefix) :]
                wanted.append(member)
        if not wanted:
            raise SystemExit(f"error: {sdist} has no vendor/llama.cpp")
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        log(f"extracting vendor/llama.cpp from {sdist.name} ({len(wanted)} entries)")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp, members=wanted, filter="data")
        else:  # Python < 3.11.4: no extraction filters; refuse anything that escapes the directory
            for member in wanted:
                if member.name.startswith("/") or ".." in Path(member.name).parts or member.issym() or member.islnk():
                    raise SystemExit(f"error: unsafe entry {member.name!r} in {sdist}")
            tar.extractall(tmp, members=wanted)
    (tmp / ".sdist-sha256").write_text(sdist_sha + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return changelog


def run(cmd: list[str], cwd: Path | None = None) -> None:
    log("+ " + shlex.join(cmd))
    subprocess.run(cmd, check=True, cwd=cwd, stdout=sys.stderr)  # stdout is only for the binary's path


def lock(path: Path) -> IO[str]:
    """Hold an exclusive lock on path until the returned file object is closed (no-op without fcntl)."""
    handle = path.open("a")
    try:
        import fcntl
    except ImportError:
        return handle
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=str(DEFAULT_PYTHON), help="interpreter of the venv (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="reconfigure and rebuild even if the binary exists")
    args = parser.parse_args()

    stamp_path = Path(args.python).absolute().parent.parent / ".llama-build.json"
    stamp = read_json(stamp_path)
    if not stamp or not stamp.get("key"):
        log(f"error: no llama-cpp-python build stamp at {stamp_path}: run make install first")
        return 1
    key, version = str(stamp["key"]), str(stamp.get("version", ""))
    recorded_args = str(stamp.get("cmake_args", ""))

    installer = load_installer()
    if version and version != installer.VERSION:
        log(f"error: venv has llama-cpp-python {version}, this tree builds {installer.VERSION}: run make install first")
        return 1
    out = Path(installer.cache_root()) / "native" / key
    out.mkdir(parents=True, exist_ok=True)
    info_path = out / "native.json"
    binary = out / "bin" / "llama-bench"

    held = lock(out / ".lock")
    try:
        sdist = Path(installer.sdist_path())
        info = read_json(info_path)
        if (
            not args.force
            and info is not None
            and info.get("key") == key
            and binary.is_file()
            and (not sdist.is_file() or info.get("sdist_sha256") == sha256_of(sdist))
        ):
            log(f"llama-bench already built for build key {key}")
            print(binary)
            return 0

        sdist = Path(installer.ensure_sdist(args.python))
        sdist_sha = sha256_of(sdist)
        changelog = extract_vendor(sdist, out / "src", sdist_sha)
        commit = llama_cpp_commit(changelog, installer.VERSION)
        build_id = commit or f"llama-cpp-python-{installer.VERSION}"

        jobs = str(os.cpu_count() or 2)
        cmake_args = [*BASE_CMAKE_ARGS, f"-DLLAMA_BUILD_COMMIT={build_id}", *shlex.split(recorded_args)]
        generator = ["-G", "Ninja"] if shutil.which("ninja") and not (out / "build" / "Makefile").exists() else []
        configure = ["cmake", "-S", "src", "-B", "build", *generator, *cmake_args]
        build = ["cmake", "--build", "build", "--config", "Release", "--target", "llama-bench", "--parallel", jobs]
        log(f"building llama-bench for build key {key} ({stamp.get('plan', '?')}) on {jobs} CPUs; takes minutes...")
        started = time.monotonic()
        run(configure, cwd=out)
        run(build, cwd=out)
        seconds = round(time.monotonic() - started, 1)

        built = out / "build" / "bin" / "llama-bench"
        if not built.is_file():
            log(f"error: the build finished but {built} is missing")
            return 1
        link = out / "bin"
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        link.symlink_to(Path("build") / "bin", target_is_directory=True)
        write_json(
            info_path,
            {
                "key": key,
                "plan": stamp.get("plan"),
                "version": installer.VERSION,
                "llama_cpp_commit": build_id,
                "binary": str(binary),
                "sdist": str(sdist),
                "sdist_sha256": sdist_sha,
                "recorded_cmake_args": recorded_args,
                "cmake_args": cmake_args,
                "configure": shlex.join(configure),
                "build": shlex.join(build),
                "compiler": installer.compiler_id(),
                "build_seconds": seconds,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
        log(f"built llama-bench ({build_id}) in {seconds:.0f} s")
        print(binary)
        return 0
    except subprocess.CalledProcessError as exc:
        log(f"error: {shlex.join(exc.cmd)} failed with exit code {exc.returncode}")
        return 1
    finally:
        held.close()


if __name__ == "__main__":
    sys.exit(main())
