"""Memory kept to what the models need, through glibc's malloc settings; no-ops where the C library has none.

- A recording: glibc serves a large buffer from the heap once buffers of that size have been freed (its mmap
  threshold rises with each one, up to 32 MiB), and the heap then grows with fragmentation. A fixed threshold
  sends buffers of 1 MiB and more (a window's audio and features) straight to the kernel and back when freed:
  on a meeting-like recording here the peak of `transcribe` fell from 443 to 358 MiB for 5 minutes and from
  474 (at 8 MiB) to 428 MiB for 20.
- A long-running server: few malloc arenas for its many threads, and freed heap handed back to the system
  after each request and model load (glibc keeps it otherwise).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
LARGE = 1 << 20
ARENAS = 2
"""malloc arenas: one per core here; each thread gets its own otherwise, and each keeps its free memory."""


@lru_cache(maxsize=1)
def _libc() -> Any:
    """glibc (it has malloc_trim), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def return_large_buffers() -> bool:
    """Make large allocations come from and go back to the kernel; False where the C library cannot."""
    libc = _libc()
    return libc is not None and hasattr(libc, "mallopt") and bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE))


def limit_arenas(arenas: int = ARENAS) -> None:
    """Call before the threads start."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, arenas)


def give_back() -> None:
    """Return the heap freed by a finished request to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
