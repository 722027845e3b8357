"""How an answer is spoken sentence by sentence: a worker synthesises sentences as they arrive and plays
them (or files them).

The first sentence is heard while the rest of the answer is still being generated, and a sentence's first piece
while the rest of it is synthesised (`Speaker.synthesize_stream`); `speaking` is set while anything is queued or
playing, so capture can be gated (`gate`); `stop` cuts speech at once (barge-in).
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..audio.chunk import AudioChunk
from ..files import is_stream
from ..text import speakable
from .output import SoundOut, is_sound, trim_leading_silence, write_wav
from .speaker import Speaker, Speech

log = logging.getLogger(__name__)
ECHO_TAIL = 0.3
"""Seconds capture stays gated after playback ends (room echo, device latency)."""


class SpeechSink(Protocol):
    """Where synthesised speech goes."""

    audible: bool
    """Speech goes out of a loudspeaker (and so may come back in through a microphone)."""

    def open(self, rate: int) -> None:
        """Get ready for speech at `rate` Hz (a sound card opens here, before the first answer)."""
        ...

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        """True when it played to the end, False when `stop` cut it."""
        ...

    def heard_at(self) -> float | None:
        """perf_counter time the last piece played started to be heard, when known."""
        ...

    def end_turn(self) -> None: ...

    def close(self) -> None: ...

    @property
    def latency(self) -> float:
        """Seconds from handing a sample over to hearing it."""
        ...


class DeviceSink:
    """The sound card (default or chosen output device), open for the whole session."""

    audible = True

    def __init__(self, device: int | str | None = None) -> None:
        self.device = device
        self.out = SoundOut(device)

    def open(self, rate: int) -> None:
        self.out.open(rate)

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        return self.out.play(speech, stop)

    def heard_at(self) -> float | None:
        return self.out.heard_at

    def end_turn(self) -> None:
        pass

    def close(self) -> None:
        self.out.close()

    @property
    def latency(self) -> float:
        return self.out.latency


@dataclass
class WavSink:
    """A WAV file holding every answer of the session so far, rewritten atomically after each turn; a pipe or a
    device (`/dev/stdout`, a FIFO) gets each turn as a WAV of its own instead."""

    path: Path
    pieces: list[Speech] = field(default_factory=list)
    audible = False
    _sent: int = 0

    def open(self, rate: int) -> None:
        pass

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        self.pieces.append(speech)
        return not stop.is_set()

    def heard_at(self) -> float | None:
        return None

    def end_turn(self) -> None:
        fresh = self.pieces[self._sent :] if is_stream(self.path) else self.pieces
        if fresh:
            write_wav(fresh, self.path)
            self._sent = len(self.pieces)

    def close(self) -> None:
        pass

    latency = 0.0


class NullSink:
    """--no-speak."""

    audible = False

    def open(self, rate: int) -> None:
        pass

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        return True

    def heard_at(self) -> float | None:
        return None

    def end_turn(self) -> None:
        pass

    def close(self) -> None:
        pass

    latency = 0.0


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
        """perf_counter time the first piece of the turn's speech was ready to play."""
        self.first_heard: float | None = None
        """perf_counter time the first sentence of the turn started to be heard (a sound card says when)."""
        self.synth_seconds: float | None = None
        """Time the first piece of the turn's speech took to synthesise (its first sentence's, or all of it)."""
        self.spoken: list[str] = []
        self.quiet_until = 0.0
        """perf_counter time until which the voice's echo may still be heard."""
        self._spans: deque[list[float]] = deque(maxlen=64)
        """[start, end] perf_counter times of recent speech, echo tail included (end inf while speaking)."""
        self._texts: queue.Queue[tuple[int, str, Iterator[Speech] | None] | None] = queue.Queue()
        self._speech: queue.Queue[tuple[int, Speech] | None] = queue.Queue()
        self._turn = 0
        """Turns started so far; queued work carries the turn it belongs to."""
        self._abandoned = 0
        """The last turn that was interrupted: its work still in flight is dropped."""
        self._lock = threading.Condition()
        self._pending = 0
        """Sentences said and not yet all synthesised, plus pieces synthesised and not yet played (or dropped)."""
        self._synthesizing = 0
        """Sentences said and not yet synthesised."""
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._voice = threading.Lock()
        """Held while the speaker synthesises: a sentence begun for a draft is made beside the mouth's own."""

    def open(self) -> None:
        if self.speaker is not None:
            self.speaker.open()
            self.sink.open(self.speaker.rate)
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
        self.sink.close()
        if self.speaker is not None:
            self.speaker.close()

    def start_turn(self) -> None:
        with self._lock:
            self._turn += 1
        self.stop.clear()
        self.first_audio = self.first_heard = self.synth_seconds = None
        self.spoken = []
        self._error = None

    def say(self, sentence: str, speech: Iterator[Speech] | None = None) -> None:
        """Queue a sentence to be spoken; `speech`: its audio, begun already (`speakable(sentence)` said by this
        mouth's speaker), to carry on with rather than synthesising it again."""
        text = speakable(sentence)
        if not text or self.speaker is None or self.stop.is_set():
            return
        with self._lock:
            self._pending += 1
            self._synthesizing += 1
            if not self.speaking.is_set():
                self._spans.append([time.perf_counter(), math.inf])
            self.speaking.set()
            self._texts.put((self._turn, text, speech))

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
        """Barge-in: drop what is queued and silence what plays, now; a sentence being synthesised is thrown away
        when it is done (nobody waits for it)."""
        self.stop.set()
        with self._lock:
            self._drain(self._texts)
            self._drain(self._speech)
            self._abandoned = self._turn
            self._synthesizing = self._pending = 0
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
        return self.sink.audible

    @property
    def gated(self) -> bool:
        """True while the assistant's own voice may reach the microphone."""
        return self.audible and (self.speaking.is_set() or time.perf_counter() < self.quiet_until)

    def spoke_during(self, start: float, end: float) -> bool:
        """Whether the assistant's voice (with its echo tail) may have reached a microphone between these
        perf_counter times."""
        with self._lock:
            return any(begin <= end and start <= until for begin, until in self._spans)

    def gate(
        self, chunks: Iterable[AudioChunk], on_muted: Callable[[AudioChunk], None] | None = None
    ) -> Iterator[AudioChunk]:
        """Microphone audio with silence in place of what was captured while the assistant's own voice may have
        reached it, judged by when each chunk was captured (a backlog read after an answer is still gated);
        `on_muted` sees each chunk that was silenced (e.g. to spot a wake word over the voice)."""
        for chunk in chunks:
            if chunk.captured is None:
                muted = self.gated
            else:
                muted = self.audible and self.spoke_during(chunk.captured - chunk.seconds, chunk.captured)
            if muted:
                if on_muted is not None:
                    on_muted(chunk)
                yield AudioChunk(np.zeros_like(chunk.samples), chunk.start)
            else:
                yield chunk

    def _settle(self) -> None:
        """Under the lock: wake waiters; mark silence when nothing is left."""
        if self._pending <= 0:
            self._pending = 0
            self.quiet_until = time.perf_counter() + ECHO_TAIL
            if self.speaking.is_set() and self._spans:
                self._spans[-1][1] = self.quiet_until
            self.speaking.clear()
        self._lock.notify_all()

    def _current(self, turn: int) -> bool:
        """Under the lock: whether work of `turn` still counts (not a turn that was interrupted or is over)."""
        return turn == self._turn and turn > self._abandoned

    def _synthesize(self) -> None:
        while (item := self._texts.get()) is not None:
            turn, text, begun = item
            try:
                if not self.stop.is_set() and self.speaker is not None:
                    self._pieces(turn, text, begun or self.speaker.synthesize_stream(text))
            except BaseException as exc:  # handed to the caller in finish()
                self._error = exc
                self.stop.set()
            with self._lock:
                if not self._current(turn):
                    continue
                self._synthesizing = max(0, self._synthesizing - 1)
                self._pending -= 1  # the sentence's own count; its pieces count for themselves
                self._settle()

    def _pieces(self, turn: int, text: str, speech: Iterator[Speech]) -> None:
        """Queue each piece of a sentence's speech as soon as it is made (the first is played while the rest are
        made); stop early when the turn is interrupted or over."""
        started = time.perf_counter()
        heard = False
        for piece in self._made(speech):
            if not heard:  # only a sentence's first sound has a silence before it
                piece = trim_leading_silence(piece)
                if not is_sound(piece):
                    continue
            with self._lock:
                if not self._current(turn) or self.stop.is_set():
                    return
                if self.first_audio is None:
                    self.first_audio = time.perf_counter()
                    self.synth_seconds = self.first_audio - started
                if not heard:
                    self.spoken.append(text)
                heard = True
                self._pending += 1
                self._speech.put((turn, piece))

    def begin(self, sentence: str) -> Iterator[Speech] | None:
        """The speech of `sentence` with its first piece made now, on the caller's thread, and the rest as it is
        iterated (by the mouth, under its lock): to `say` later without waiting for synthesis (None when there is
        nothing to say)."""
        text = speakable(sentence)
        if not text or self.speaker is None:
            return None
        with self._voice:
            speech = self.speaker.synthesize_stream(text)
            first = next(speech, None)
        return None if first is None else itertools.chain([first], speech)

    def _made(self, speech: Iterator[Speech]) -> Iterator[Speech]:
        """`speech` made one piece at a time under the voice's lock (one synthesis at a time)."""
        while True:
            with self._voice:
                piece = next(speech, None)
            if piece is None:
                return
            yield piece

    def _play(self) -> None:
        while (item := self._speech.get()) is not None:
            turn, speech = item
            try:
                if not self.stop.is_set() and self.sink.play(speech, self.stop) and self.first_heard is None:
                    self.first_heard = self.sink.heard_at()
            except BaseException as exc:  # handed to the caller in finish()
                self._error = exc
                self.stop.set()
            with self._lock:
                if self._current(turn):
                    self._pending -= 1
                    self._settle()
