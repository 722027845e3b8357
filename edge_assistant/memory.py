"""Flat memory over a long recording.

glibc's malloc serves a large buffer from the heap once buffers of that size have been freed (its mmap threshold
rises with each one, up to 32 MiB), and the heap then grows with fragmentation. A fixed threshold sends buffers of
1 MiB and more (a window's audio and features) straight to the kernel and back when freed: on a meeting-like
recording here the peak of `transcribe` fell from 443 to 358 MiB for 5 minutes and from 474 (at 8 MiB) to
428 MiB for 20.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3
LARGE = 1 << 20


def return_large_buffers() -> bool:
    """Make large allocations come from and go back to the kernel; False where the C library cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, LARGE))
