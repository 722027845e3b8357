"""numpy's BLAS threads sleep as soon as a product is done in edge-assistant's processes: spinning, they would take
the core that Whisper, the language model or the voice needs next."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

IDLE_CPU = """
import time
import edge_assistant.stt.whisper  # numpy comes in behind the package, as in every command
import numpy as np
a = np.random.default_rng(0).random((400, 400), dtype=np.float32)
a @ a  # large enough for BLAS to share it among its threads
before = time.process_time()
time.sleep(0.3)
print(time.process_time() - before)
"""


@pytest.mark.parametrize(("given", "spins"), [(None, False), ("28", True)])
def test_numpy_blas_threads_do_not_spin_unless_the_user_chose(given: str | None, spins: bool) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    if given is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = given  # OpenBLAS's own default: 2^28 cycles, about 0.1 s
    out = subprocess.run([sys.executable, "-c", IDLE_CPU], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    idle = float(out.stdout)
    assert (idle > 0.03) is spins, f"{idle:.3f} s of CPU while idle"
