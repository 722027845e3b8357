"""Speech after a pause that Whisper's short window left out.

In a window cut to the utterance, Whisper sometimes ends its transcript at a pause inside the sentence: "What
is the capital of." for "What is the capital of ... Australia?". The speech after the pause then has no word.
The voiced runs of the audio show it: the last run, after a pause, has no word starting in it. That run is
transcribed on its own and joined to the rest (`join_tail`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..audio.chunk import RATE

FRAME = 0.03
"""Seconds per loudness frame."""
PAUSE = 0.3
"""Seconds of silence that separate two runs of voice."""
RUN = 0.2
"""Seconds of voice a run must have before words are expected in it (shorter: a breath, a click)."""
LEVEL = 0.1
"""A frame is voice when its RMS is above this share of the loudest frame's ..."""
MIN_LEVEL = 300.0
"""... and above this (of 32768)."""
EARLY = 0.25
"""Seconds before a run's start where a word's aligned start still counts as the run's (alignment is coarse)."""
CLOSING = ".?!"
_WORD = re.compile(r"[\w']+")


def voiced_runs(samples: npt.NDArray[np.int16]) -> list[tuple[float, float, float]]:
    """(start, end, seconds of voice) of each run of voice, in seconds from the first sample."""
    step = int(RATE * FRAME)
    count = len(samples) // step
    if not count:
        return []
    frames = samples[: count * step].astype(np.float32).reshape(count, step)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    voiced = rms > max(MIN_LEVEL, LEVEL * float(rms.max()))
    runs: list[tuple[float, float, float]] = []
    gap = round(PAUSE / FRAME)
    start = last = -1
    loud = 0
    for i in np.flatnonzero(voiced):
        if start >= 0 and i - last > gap:
            runs.append((start * FRAME, (last + 1) * FRAME, loud * FRAME))
            start, loud = -1, 0
        if start < 0:
            start = int(i)
        last = int(i)
        loud += 1
    if start >= 0:
        runs.append((start * FRAME, (last + 1) * FRAME, loud * FRAME))
    return runs


def unheard_tail(samples: npt.NDArray[np.int16], word_starts: Sequence[float]) -> float | None:
    """Seconds from the first sample where the last run of voice begins when it followed a pause and no word
    starts in it (it was left out); None when it has words, or there is no such run."""
    runs = voiced_runs(samples)
    if len(runs) < 2 or not word_starts:
        return None
    start, _, voice = runs[-1]
    if voice < RUN or any(w >= start - EARLY for w in word_starts):
        return None
    return start


def join_tail(first: str, tail: str) -> tuple[str, int]:
    """The text of the whole: `first` without the full stop or question mark Whisper closed it with at the
    pause, then `tail` without the words `first` already ends with (when the run did have them after all); and
    how many of the tail's words were left out as repeats."""
    head = first.rstrip()
    if head[-1:] in CLOSING and head[-2:-1] not in CLOSING:
        head = head[:-1]
    said = [w.lower() for w in _WORD.findall(head)]
    words = tail.split()
    spoken = [(_WORD.findall(w.lower()) or [""])[0] for w in words]
    repeated = next(
        (n for n in range(min(len(said), len(spoken)), 0, -1) if said[-n:] == spoken[:n]),
        0,
    )
    if repeated == len(words):
        return first, repeated
    return f"{head} {' '.join(words[repeated:])}", repeated
