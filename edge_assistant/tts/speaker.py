"""What a voice is (the Speaker protocol) and what it produces (Speech)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Speech:
    """Synthesized audio: mono int16 samples."""

    samples: npt.NDArray[np.int16]
    rate: int
    """Sample rate (Hz)."""
    text: str = ""
    """The text spoken, when known."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0


@runtime_checkable
class Speaker(Protocol):
    """A voice: `open()` loads it once, then it speaks reply after reply until `close()`."""

    name: str
    """Catalog id or another short label for messages."""
    language: str
    """ISO 639-1 code (or espeak-ng language tag) of the language it speaks."""

    @property
    def rate(self) -> int:
        """Sample rate of its speech (Hz); the voice must be open."""
        ...

    def open(self) -> None: ...

    def synthesize(self, text: str) -> Speech: ...

    def synthesize_stream(self, text: str) -> Iterator[Speech]:
        """The speech in order, sentence by sentence (a sentence may come in several pieces), each as soon as it
        is ready: play the first while the rest are made."""
        ...

    def close(self) -> None: ...


def empty(rate: int, text: str = "") -> Speech:
    return Speech(np.zeros(0, dtype=np.int16), rate, text)
