"""The shape every mode has: open (load what is slow), run over an audio source yielding events, close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

from ..audio.sources import AudioSource
from ..offline import hub_offline
from .events import Event

M = TypeVar("M", bound="Mode")


class Mode(ABC):
    """`with mode: for event in mode.run(source): ...`; a failed open closes what it had opened. Inside, the hub
    client is offline: a run mode never touches the network."""

    _offline: AbstractContextManager[None]

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
        self._offline = hub_offline()
        self._offline.__enter__()
        try:
            self.open()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            self._offline.__exit__(None, None, None)
