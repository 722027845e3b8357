"""Speaking replies: a worker that synthesises sentences as they arrive and plays them (or files them).

The first sentence is heard while the rest of the answer is still being generated; `speaking` is set
while anything is queued or playing, so capture can be gated; `stop` cuts speech at once (barge-in).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..text import speakable
from ..tts.output import play, write_wav
from ..tts.speaker import Speaker, Speech

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
    """A WAV file holding every answer of the session so far, rewritten atomically after each turn."""

    path: Path
    pieces: list[Speech] = field(default_factory=list)

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        self.pieces.append(speech)
        return not stop.is_set()

    def end_turn(self) -> None:
        if self.pieces:
            write_wav(self.pieces, self.path)


class NullSink:
    """--no-speak."""

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        return True

    def end_turn(self) -> None:
        pass


class Mouth:
    """Speaks queued sentences in order on a worker thread."""

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
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        if self.speaker is not None:
            self.speaker.open()
        self._thread = threading.Thread(target=self._work, name="mouth", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        if self.speaker is not None:
            self.speaker.close()

    def start_turn(self) -> None:
        self.stop.clear()
        self.first_audio = self.synth_seconds = None
        self.spoken = []
        self._error = None

    def say(self, sentence: str) -> None:
        text = speakable(sentence)
        if text and self.speaker is not None and not self.stop.is_set():
            self._idle.clear()
            self.speaking.set()
            self._queue.put(text)

    def finish(self, timeout: float = 300) -> None:
        """Wait until everything queued has been spoken (or cut); re-raise a playback error."""
        self._idle.wait(timeout)
        self.sink.end_turn()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def interrupt(self) -> None:
        """Barge-in: drop what is queued and silence what plays."""
        self.stop.set()
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._idle.set()

    @property
    def audible(self) -> bool:
        """Speech goes out of a loudspeaker (and so may come back in through a microphone)."""
        return isinstance(self.sink, DeviceSink)

    @property
    def gated(self) -> bool:
        """True while the assistant's own voice may reach the microphone."""
        return self.audible and (self.speaking.is_set() or time.monotonic() < self.quiet_until)

    def _work(self) -> None:
        while True:
            text = self._queue.get()
            if text is None:
                return
            if self.stop.is_set() or self.speaker is None:
                self._done_if_empty()
                continue
            try:
                started = time.perf_counter()
                speech = self.speaker.synthesize(text)
                if self.first_audio is None:
                    self.first_audio, self.synth_seconds = time.perf_counter(), time.perf_counter() - started
                self.spoken.append(text)
                self.sink.play(speech, self.stop)
            except BaseException as exc:  # handed to the caller in finish()
                self._error = exc
                self.stop.set()
            self._done_if_empty()

    def _done_if_empty(self) -> None:
        if self._queue.empty():
            self.quiet_until = time.monotonic() + ECHO_TAIL
            self.speaking.clear()
            self._idle.set()
