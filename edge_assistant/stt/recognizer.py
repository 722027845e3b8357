"""The recognizer protocol: audio chunks in, partial and final utterances out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from ..audio.chunk import AudioChunk
from ..audio.windows import Window
from .types import Utterance


class TurnEnd(Protocol):
    """Whether the words heard so far, followed by this much silence, end the speaker's turn; `punctuated`: the
    recognizer punctuates what it hears (a sentence it hears end gets a full stop or a question mark). Whisper
    leaves out the words it wrote into the silence after the voice (`stt/unsaid.py`)."""

    @property
    def min_silence(self) -> float:
        """Seconds of silence before which no turn ends early."""
        ...

    @property
    def pause(self) -> float:
        """Seconds of silence after which the recognizer should have started on the words so far."""
        ...

    def __call__(self, text: str, silence: float, punctuated: bool) -> bool: ...

    def waiting(self, heard: str, said: str) -> None:
        """The turn did not end at a pause after these words: it will with them unless the voice comes back
        (`heard`: the text the utterance will have; `said`: without the words written into the silence)."""
        ...

    def resumed(self) -> None:
        """The voice came back after words given to `waiting`."""
        ...


class Recognizer(Protocol):
    """Speech to text. `open()` loads the model (before any microphone opens); `stream` is lazy."""

    name: str
    engine: str
    streaming: bool
    """True when it yields partial results while an utterance is spoken."""
    turn_end: TurnEnd | None
    """Ends an utterance at a pause once its words say the turn is over (conversation); None: only the
    endpointer's trailing silence does."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def stream(self, chunks: Iterable[AudioChunk]) -> Iterator[Utterance]:
        """Partials (final=False) as speech goes on, a final per utterance; the last one when the audio ends."""
        ...

    def transcribe_window(self, window: Window) -> Iterator[Utterance]:
        """Final utterances of one window of a recording, transcribed on its own (nothing carried over from
        the window before): the same window gives the same utterances."""
        ...
