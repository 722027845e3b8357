"""Reference figures from llama.cpp's own llama-bench, built from the same source and flags as our llama-cpp-python.

`make bench-native` (scripts/build_llama_bench.py) builds the binary once per build key into
<cache>/edge-assistant/native/<key>/; this module finds it for the running venv and parses its JSON output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_assistant.errors import BackendError


@dataclass(frozen=True)
class NativeResult:
    """Average throughput of one llama-bench run: prompt processing (pp) and token generation (tg)."""

    pp_tokens_per_s: float
    tg_tokens_per_s: float
    pp_tokens: int
    tg_tokens: int
    threads: int
    build: str
    """llama.cpp commit (and build number, when known) that llama-bench reports."""


def _cache_root() -> Path:
    # Same rule as scripts/install_llama.py:cache_root().
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-assistant"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_llama_bench() -> Path | None:
    """The llama-bench built for this venv's llama-cpp-python build key, or None if there is none."""
    stamp = _read_json(Path(sys.prefix) / ".llama-build.json")
    key = stamp.get("key") if stamp else None
    if not isinstance(key, str) or not key:
        return None
    folder = _cache_root() / "native" / key
    info = _read_json(folder / "native.json")
    if info is None or info.get("key") != key:
        return None
    recorded = info.get("binary")
    candidates = [Path(recorded)] if isinstance(recorded, str) else []
    candidates.append(folder / "bin" / "llama-bench")
    for binary in candidates:
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _row(rows: list[dict[str, Any]], n_prompt: int, n_gen: int) -> dict[str, Any]:
    for row in rows:
        if row.get("n_prompt") == n_prompt and row.get("n_gen") == n_gen:
            return row
    raise BackendError(f"llama-bench output has no test with n_prompt={n_prompt}, n_gen={n_gen}")


def run_llama_bench(
    binary: Path,
    model: Path,
    *,
    threads: int,
    pp: int = 64,
    tg: int = 64,
    repetitions: int = 3,
    timeout: float = 600,
) -> NativeResult:
    """Run llama-bench on the CPU (-ngl 0) for a pp-token prompt and tg generated tokens; average tokens/s."""
    if pp <= 0 or tg <= 0 or threads <= 0 or repetitions <= 0:
        raise ValueError("pp, tg, threads and repetitions must be positive")
    cmd = [str(binary), "-m", str(model), "-t", str(threads), "-p", str(pp), "-n", str(tg)]
    cmd += ["-r", str(repetitions), "-ngl", "0", "-o", "json"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BackendError(f"llama-bench did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise BackendError(f"cannot run {binary}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        raise BackendError(f"llama-bench failed ({why}): {_last_line(proc.stderr or proc.stdout)}")
    try:
        rows = json.loads(proc.stdout)
    except ValueError:
        raise BackendError(f"llama-bench printed no JSON: {_last_line(proc.stdout)}") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise BackendError("llama-bench printed unexpected JSON (expected a list of test results)")
    pp_row, tg_row = _row(rows, pp, 0), _row(rows, 0, tg)
    commit = str(tg_row.get("build_commit") or "unknown")
    number = tg_row.get("build_number")
    build = f"b{number}-{commit}" if isinstance(number, int) and number > 0 else commit
    try:
        return NativeResult(
            pp_tokens_per_s=float(pp_row["avg_ts"]),
            tg_tokens_per_s=float(tg_row["avg_ts"]),
            pp_tokens=pp,
            tg_tokens=tg,
            threads=int(tg_row.get("n_threads", threads)),
            build=build,
        )
    except (KeyError, TypeError, ValueError):
        raise BackendError("llama-bench JSON lacks avg_ts for its tests") from None
