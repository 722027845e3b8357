"""The record that flows from audio sources: a chunk of 16 kHz mono int16 samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RATE = 16000
"""Sample rate of everything after the source (Hz)."""


@dataclass(frozen=True)
class AudioChunk:
    """A run of mono int16 samples at RATE."""

    samples: npt.NDArray[np.int16]
    start: float
    """Seconds since the start of the stream of the first sample."""
    captured: float | None = None
    """perf_counter time its last sample was captured (live sources; None for files)."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE

    @property
    def end(self) -> float:
        return self.start + self.seconds

    @property
    def pcm(self) -> bytes:
        """Little-endian s16 bytes, as recognizers take them."""
        return self.samples.astype("<i2", copy=False).tobytes()

    @property
    def rms(self) -> float:
        """Root-mean-square level, 0..32768."""
        if not len(self.samples):
            return 0.0
        return float(np.sqrt(np.mean(self.samples.astype(np.float32) ** 2)))
