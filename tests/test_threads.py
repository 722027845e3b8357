"""numpy's BLAS runs on one thread in edge-assistant's processes: its idle workers would spin on the core that
Whisper, the language model or the voice needs next."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

BLAS_THREADS = """
import ctypes
import edge_assistant.stt.whisper  # numpy comes in behind the package, as in every command
import numpy
libraries = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower()}
assert libraries, "numpy is not linked to OpenBLAS"
library = ctypes.CDLL(sorted(libraries)[0])
for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
    if hasattr(library, name):
        print(getattr(library, name)())
        break
else:
    raise SystemExit("no thread count in " + str(libraries))
"""


@pytest.mark.parametrize(("given", "threads"), [(None, 1), ("2", 2)])
def test_numpy_blas_gets_one_thread_unless_the_user_chose(given: str | None, threads: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run([sys.executable, "-c", BLAS_THREADS], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) == threads
