"""A recording cut into long windows at quiet moments, each to be transcribed on its own.

Where a window ends depends only on the audio (the quietest tenth of a second near its nominal length), so a
run resumed at any window sees the very windows an uninterrupted run saw, and transcribes them the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import AudioError
from ..settings import WindowSettings
from .chunk import RATE, AudioChunk

FRAME = RATE // 10
"""Samples per frame when looking for the quietest moment."""


@dataclass(frozen=True)
class Window:
    """A stretch of 16 kHz mono audio from a recording."""

    samples: npt.NDArray[np.int16]
    start: float
    """Seconds from the start of the recording of the first sample."""

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / RATE

    def chunks(self, size: int = RATE // 20) -> Iterator[AudioChunk]:
        """The window as chunks (the same chunks whenever the window is the same)."""
        for i in range(0, len(self.samples), size):
            yield AudioChunk(self.samples[i : i + size], self.start + i / RATE)


def quietest(samples: npt.NDArray[np.int16], since: int) -> int:
    """Index of the middle of the quietest frame of `samples[since:]` (the latest one on a tie)."""
    usable = (len(samples) - since) // FRAME * FRAME
    if usable <= 0:
        return len(samples)
    frames = samples[since : since + usable].astype(np.float32).reshape(-1, FRAME)
    energy = np.mean(frames * frames, axis=1)
    last = len(energy) - 1 - int(np.argmin(energy[::-1]))
    return since + last * FRAME + FRAME // 2


def windows(chunks: Iterable[AudioChunk], settings: WindowSettings | None = None) -> Iterator[Window]:
    """Windows of about `settings.length` seconds, cut at the quietest moment of their last `settings.search`
    seconds. When the audio breaks off (AudioError), the audio read so far still comes out first."""
    s = settings or WindowSettings()
    length, search = int(s.length * RATE), int(min(s.search, s.length / 2) * RATE)
    pieces: list[npt.NDArray[np.int16]] = []
    held, start = 0, 0
    failure: AudioError | None = None
    try:
        for chunk in chunks:
            if not pieces:
                start = round(chunk.start * RATE)  # the stream's clock, from its first chunk
            pieces.append(chunk.samples)
            held += len(chunk.samples)
            if held < length:
                continue
            samples = np.concatenate(pieces)
            cut = quietest(samples[:length], length - search)
            yield Window(samples[:cut], start / RATE)
            start += cut
            pieces, held = [samples[cut:].copy()], len(samples) - cut
    except AudioError as exc:
        failure = exc
    if held:
        yield Window(np.concatenate(pieces), start / RATE)
    if failure is not None:
        raise failure
