"""A long-running server's memory kept to what its models need: few malloc arenas for its many threads, and
freed heap handed back to the system after each request (glibc keeps it otherwise). No-ops elsewhere."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)
M_ARENA_MAX = -8
ARENAS = 2
"""malloc arenas: one per core here; each thread gets its own otherwise, and each keeps its free memory."""


@lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


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
