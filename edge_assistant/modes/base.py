"""The shape every mode has: open (load what is slow), run over an audio source yielding events, close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TypeVar

from ..audio.sources import AudioSource
from .events import Event

M = TypeVar("M", bound="Mode")


class Mode(ABC):
    """`with mode: for event in mode.run(source): ...`; a failed open closes what it had opened."""

    @abstractmethod
    def open(self) -> None:
        """Load models and open outputs, before any audio is read."""

    @abstractmethod
    def run(self, source: AudioSource) -> Iterator[Event]:
        """Work through the source's audio until it ends (or is closed), yielding what happens."""

    @abstractmethod
    def close(self) -> None:
        """Release what `open` took; safe to call after a partial open."""

    def __enter__(self: M) -> M:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
