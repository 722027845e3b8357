"""How an answer is spoken sentence by sentence: a worker synthesises sentences as they arrive and plays
them (or files them).

The first sentence is heard while the rest of the answer is still being generated; `speaking` is set
while anything is queued or playing, so capture can be gated (`gate`); `stop` cuts speech at once (barge-in).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..audio.chunk import AudioChunk
from ..files import is_stream
from ..text import speakable
from .output import play, write_wav
from .speaker import Speaker, Speech

log = logging.getLogger(__name__)
ECHO_TAIL = 0.3
"""Seconds capture stays gated after playback ends (room echo, device latency)."""


class SpeechSink(Protocol):
    """Where synthesised speech goes."""

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        """True when it played to the end, False when `stop` cut it."""
        ...

    def end_turn(self) -> None: ...


@dataclass
class DeviceSink:
    """The sound card (default or chosen output device)."""

    device: int | str | None = None

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        return play(speech, self.device, stop)

    def end_turn(self) -> None:
        pass


@dataclass
class WavSink:
    """A WAV file holding every answer of the session so far, rewritten atomically after each turn; a pipe or a
    device (`/dev/stdout`, a FIFO) gets each turn as a WAV of its own instead."""

    path: Path
    pieces: list[Speech] = field(default_factory=list)
    _sent: int = 0

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        self.pieces.append(speech)
        return not stop.is_set()

    def end_turn(self) -> None:
        fresh = self.pieces[self._sent :] if is_stream(self.path) else self.pieces
        if fresh:
            write_wav(fresh, self.path)
            self._sent = len(self.pieces)


class NullSink:
    """--no-speak."""

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        return True

    def end_turn(self) -> None:
        pass


class Mouth:
    """Speaks queued sentences in order: one thread synthesises, another plays.

    Synthesis and generation take turns on the CPU (`wait_synthesized`), while playback, which costs
    nothing, overlaps both: on a small machine two compute-heavy libraries running at once starve each
    other (measured here: generation fell from 122 to 7 tokens/s).
    """

    def __init__(self, speaker: Speaker | None, sink: SpeechSink) -> None:
        self.speaker = speaker
        self.sink = sink
        self.speaking = threading.Event()
        self.stop = threading.Event()
        self.first_audio: float | None = None
        """perf_counter time the first sentence of the turn was ready to play."""
        self.synth_seconds: float | None = None
        """Time the first sentence took to synthesise."""
        self.spoken: list[str] = []
        self.quiet_until = 0.0
        self._texts: queue.Queue[str | None] = queue.Queue()
        self._speech: queue.Queue[Speech | None] = queue.Queue()
        self._lock = threading.Condition()
        self._pending = 0
        """Sentences said and not yet played (or dropped)."""
        self._synthesizing = 0
        """Sentences said and not yet synthesised."""
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    def open(self) -> None:
        if self.speaker is not None:
            self.speaker.open()
        self._threads = [
            threading.Thread(target=self._synthesize, name="mouth-synth", daemon=True),
            threading.Thread(target=self._play, name="mouth-play", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self.interrupt()
        self._texts.put(None)
        self._speech.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        if self.speaker is not None:
            self.speaker.close()

    def start_turn(self) -> None:
        self.stop.clear()
        self.first_audio = self.synth_seconds = None
        self.spoken = []
        self._error = None

    def say(self, sentence: str) -> None:
        text = speakable(sentence)
        if not text or self.speaker is None or self.stop.is_set():
            return
        with self._lock:
            self._pending += 1
            self._synthesizing += 1
            self.speaking.set()
        self._texts.put(text)

    def wait_synthesized(self, timeout: float = 60) -> None:
        """Block until every sentence said so far is synthesised (the CPU is free again)."""
        with self._lock:
            self._lock.wait_for(lambda: self._synthesizing == 0 or self.stop.is_set(), timeout)

    def finish(self, timeout: float = 300) -> None:
        """Wait until everything said has been spoken (or cut); re-raise a synthesis or playback error."""
        with self._lock:
            self._lock.wait_for(lambda: self._pending == 0, timeout)
        self.sink.end_turn()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def interrupt(self) -> None:
        """Barge-in: drop what is queued and silence what plays."""
        self.stop.set()
        with self._lock:
            dropped = self._drain(self._texts)
            self._synthesizing -= dropped
            self._pending -= dropped + self._drain(self._speech)
            self._settle()

    @staticmethod
    def _drain(q: queue.Queue[Any]) -> int:
        n = 0
        try:
            while True:
                if q.get_nowait() is not None:
                    n += 1
        except queue.Empty:
            return n

    @property
    def audible(self) -> bool:
        """Speech goes out of a loudspeaker (and so may come back in through a microphone)."""
        return isinstance(self.sink, DeviceSink)

    @property
    def gated(self) -> bool:
        """True while the assistant's own voice may reach the microphone."""
        return self.audible and (self.speaking.is_set() or time.monotonic() < self.quiet_until)

    def gate(
        self, chunks: Iterable[AudioChunk], on_muted: Callable[[AudioChunk], None] | None = None
    ) -> Iterator[AudioChunk]:
        """Microphone audio with silence in place of what was heard while the assistant's own voice may reach
        it; `on_muted` sees each chunk that was silenced (e.g. to spot a wake word over the voice)."""
        for chunk in chunks:
            if self.gated:
                if on_muted is not None:
                    on_muted(chunk)
                yield AudioChunk(np.zeros_like(chunk.samples), chunk.start)
            else:
                yield chunk

    def _settle(self) -> None:
        """Under the lock: wake waiters; mark silence when nothing is left."""
        if self._pending <= 0:
            self._pending = 0
            self.quiet_until = time.monotonic() + ECHO_TAIL
            self.speaking.clear()
        self._lock.notify_all()

    def _synthesize(self) -> None:
        while (text := self._texts.get()) is not None:
            speech = None
            try:
                if not self.stop.is_set() and self.speaker is not None:
                    started = time.perf_counter()
                    speech = self.speaker.synthesize(text)
                    if self.first_audio is None:
                        self.first_audio, self.synth_seconds = time.perf_counter(), time.perf_counter() - started
                    self.spoken.append(text)
            except BaseException as exc:  # handed to the caller in finish()
                self._error = exc
                self.stop.set()
            with self._lock:
                self._synthesizing = max(0, self._synthesizing - 1)
                if speech is None:
                    self._pending -= 1
                self._settle()
            if speech is not None:
                self._speech.put(speech)

    def _play(self) -> None:
        while (speech := self._speech.get()) is not None:
            try:
                if not self.stop.is_set():
                    self.sink.play(speech, self.stop)
            except BaseException as exc:  # handed to the caller in finish()
                self._error = exc
                self.stop.set()
            with self._lock:
                self._pending -= 1
                self._settle()
