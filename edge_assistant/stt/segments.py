"""faster-whisper's segments of a window as utterances: split where its VAD took out a pause, and word edges
moved off the silence Whisper tends to give them.

With its VAD on, faster-whisper decodes the speech of a window with the pauses cut out, so one segment may
span sentences said seconds apart; its word times (put back on the recording's clock) show the pauses. And
Whisper starts a word after a pause early, in the silence before it (by a third of a second, typically):
the energy of the audio says where the sound is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio.chunk import RATE
from .types import Utterance, Word

FRAME = RATE // 100
"""Samples per 10 ms frame."""
MIN_LEVEL = 300.0
"""RMS (of 32768) below which a frame is silence, whatever the noise."""
FLOOR_RATIO = 3.0
"""A frame is sound when its RMS exceeds the window's noise floor times this."""


class Loudness:
    """Which 10 ms frames of a window hold sound."""

    def __init__(self, samples: npt.NDArray[np.int16], start: float) -> None:
        usable = len(samples) // FRAME * FRAME
        frames = samples[:usable].astype(np.float32).reshape(-1, FRAME)
        rms = np.sqrt(np.mean(frames * frames, axis=1)) if usable else np.zeros(0, dtype=np.float32)
        floor = float(np.percentile(rms, 10)) if len(rms) else 0.0
        self.loud = rms > max(MIN_LEVEL, floor * FLOOR_RATIO)
        self.start = start

    def tighten(self, begin: float, end: float) -> tuple[float, float]:
        """The span without the silence at its edges (unchanged when it holds no sound at all)."""
        a = max(0, int((begin - self.start) * 100))
        b = min(len(self.loud), int(np.ceil((end - self.start) * 100)))
        hits = np.flatnonzero(self.loud[a:b])
        if not len(hits):
            return begin, end
        return max(begin, self.start + (a + hits[0]) / 100), min(end, self.start + (a + hits[-1] + 1) / 100)


def _words(segment: Any, loudness: Loudness) -> list[tuple[str, Word]]:
    """(raw text with its leading space, word on the recording's clock) of a segment."""
    out = []
    for w in segment.words or []:
        begin, end = loudness.tighten(loudness.start + float(w.start), loudness.start + float(w.end))
        out.append((str(w.word), Word(str(w.word).strip(), begin, end, float(w.probability))))
    return out


def utterances(
    segments: Iterable[Any], samples: npt.NDArray[np.int16], start: float, pause: float, language: str | None
) -> Iterator[Utterance]:
    """Utterances of the segments of a window that starts `start` seconds into the recording: a new one after
    a pause of `pause` seconds or more between words."""
    loudness = Loudness(samples, start)
    for segment in segments:
        words = _words(segment, loudness)
        if not words:
            text = str(segment.text).strip()
            if text:
                yield Utterance(text, start + float(segment.start), start + float(segment.end), language=language)
            continue
        run: list[tuple[str, Word]] = []
        for raw, word in words:
            if run and word.start - run[-1][1].end >= pause:
                yield from _utterance(run, language)
                run = []
            run.append((raw, word))
        yield from _utterance(run, language)


def _utterance(run: list[tuple[str, Word]], language: str | None) -> Iterator[Utterance]:
    text = "".join(raw for raw, _ in run).strip()
    words = tuple(w for _, w in run)
    if text:
        yield Utterance(text, words[0].start, words[-1].end, final=True, words=words, language=language)
