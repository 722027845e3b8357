"""Memory read bandwidth, the ceiling of token generation speed on a CPU (each token reads all the weights).

Each of `threads` threads reduces its own slice of one large buffer (far bigger than the caches) with a SIMD
kernel that does almost no work per byte, so the figure is bound by DRAM reads, not by compute. numpy releases
the GIL in the reduction loop, so the threads really run in parallel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

_ALIGN = 1 << 12  # each thread's slice starts on its own page


def _reduce_max(view: npt.NDArray[np.uint8]) -> None:
    # uint8 max: 64 bytes per AVX-512 instruction, one pass, no temporaries, GIL released.
    np.maximum.reduce(view)


def _time_parallel(
    kernel: Callable[[npt.NDArray[np.uint8]], None], slices: list[npt.NDArray[np.uint8]], repeats: int
) -> float:
    """Best wall time over repeats of all slices reduced at once, one thread per slice."""
    start = threading.Barrier(len(slices) + 1)
    done = threading.Barrier(len(slices) + 1)
    errors: list[BaseException] = []

    def work(view: npt.NDArray[np.uint8]) -> None:
        for _ in range(repeats + 1):  # +1: a warm-up round
            start.wait()
            try:
                kernel(view)
            except BaseException as exc:  # reported by the caller; the barrier must still be reached
                errors.append(exc)
            done.wait()

    workers = [threading.Thread(target=work, args=(view,), daemon=True) for view in slices]
    for worker in workers:
        worker.start()
    best = float("inf")
    for round_ in range(repeats + 1):
        start.wait()
        began = time.perf_counter()
        done.wait()
        elapsed = time.perf_counter() - began
        if round_ > 0:
            best = min(best, elapsed)
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return best


def measure_read_bandwidth(threads: int, size_bytes: int = 1 << 30, repeats: int = 5) -> float:
    """Best-of-repeats memory read bandwidth in bytes/s, reading size_bytes in total with `threads` threads."""
    if threads < 1 or repeats < 1:
        raise ValueError("threads and repeats must be at least 1")
    per_thread = max(_ALIGN, size_bytes // threads // _ALIGN * _ALIGN)
    buffer = np.empty(per_thread * threads + _ALIGN, dtype=np.uint8)
    offset = (-buffer.ctypes.data) % _ALIGN
    data = buffer[offset : offset + per_thread * threads]
    data.fill(1)  # fault every page in before timing
    slices = [data[i * per_thread : (i + 1) * per_thread] for i in range(threads)]
    seconds = _time_parallel(_reduce_max, slices, repeats)
    return data.nbytes / seconds
