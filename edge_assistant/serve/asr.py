"""Recognition while the audio arrives: chunks go to the recognizer on a worker thread as they come, so when
the audio stops only its tail is left to recognise."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..audio.chunk import AudioChunk
from ..errors import TooLargeError
from ..stt.recognizer import Recognizer
from ..stt.types import Utterance
from .pcm import PcmConverter, PcmFormat


@dataclass(frozen=True)
class Recognized:
    """What a stream of speech said: its final utterances in order."""

    utterances: tuple[Utterance, ...]
    seconds: float
    """Length of the audio."""
    language: str | None = None

    @property
    def text(self) -> str:
        return " ".join(u.text for u in self.utterances if u.text).strip()


class StableText:
    """Text that is safe to stream: words a partial result has kept over two updates, and the rest of an
    utterance once it is final. Chunks only ever add to what was sent (a streamed transcript cannot be unsaid);
    the final transcript is the authority when a recognizer changed its mind."""

    AGREE = 3
    """Partial results a word must have kept, unchanged and in place, before it is streamed."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        """Words of the current utterance already streamed."""
        self._recent: list[list[str]] = []
        self._any = False

    def partial(self, text: str) -> str:
        words = text.split()
        self._recent = [*self._recent[-(self.AGREE - 1) :], words]
        if len(self._recent) < self.AGREE:
            return ""
        stable = 0
        for column in zip(*self._recent, strict=False):
            if len(set(column)) != 1:
                break
            stable += 1
        return self._extend(words[: min(stable, len(words) - 1)])

    def final(self, text: str) -> str:
        out = self._extend(text.split())
        self.sent, self._recent = [], []
        return out

    def _extend(self, words: list[str]) -> str:
        if len(words) <= len(self.sent) or words[: len(self.sent)] != self.sent:
            return ""
        new = words[len(self.sent) :]
        gap = " " if (self.sent or self._any) else ""
        self.sent = list(words)
        self._any = True
        return gap + " ".join(new)


@dataclass
class AsrSession:
    """One stream of speech: `feed` PCM as it arrives (from the event loop), `run` recognises on a worker
    thread, `end` marks the end of the audio; `updates` holds text safe to stream as it is recognised."""

    recognizer: Recognizer
    fmt: PcmFormat
    max_seconds: float
    updates: queue.Queue[str] = field(default_factory=queue.Queue)
    finals: list[Utterance] = field(default_factory=list)
    _chunks: queue.Queue[AudioChunk | None] = field(default_factory=queue.Queue)
    _converter: PcmConverter | None = None
    _stable: StableText = field(default_factory=StableText)
    _ended: threading.Event = field(default_factory=threading.Event)
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._converter = PcmConverter(self.fmt.check())

    @property
    def seconds(self) -> float:
        assert self._converter is not None
        return self._converter.seconds

    def feed(self, data: bytes, fmt: PcmFormat | None = None) -> None:
        """The next bytes of audio (a chunk may change the format: the conversion follows it)."""
        if self._ended.is_set():
            return
        assert self._converter is not None
        if fmt is not None and fmt != self._converter.fmt:
            self._flush()
            self._converter = PcmConverter(fmt.check(), position=self._converter.position)
        chunk = self._converter.convert(data)
        if chunk is not None:
            self._chunks.put(chunk)
        if self._converter.seconds > self.max_seconds:
            self.cancel()
            raise TooLargeError(f"audio longer than {self.max_seconds:g} s; send shorter requests")

    def end(self) -> None:
        """No more audio: recognise what is left."""
        if not self._ended.is_set():
            self._flush()
            self._ended.set()
            self._chunks.put(None)

    def cancel(self) -> None:
        """Stop recognising (the client went away, or sent too much)."""
        self._cancelled.set()
        self._ended.set()
        self._chunks.put(None)

    def _flush(self) -> None:
        assert self._converter is not None
        chunk = self._converter.convert(b"", last=True)
        if chunk is not None:
            self._chunks.put(chunk)

    def _audio(self) -> Iterator[AudioChunk]:
        while (chunk := self._chunks.get()) is not None:
            if self._cancelled.is_set():
                return
            yield chunk

    def run(self) -> Recognized:
        """Recognise until the audio ends (blocking: a worker thread's job)."""
        stream = self.recognizer.stream(self._audio())
        try:
            for u in stream:
                if self._cancelled.is_set():
                    break
                if u.final:
                    self.finals.append(u)
                    new = self._stable.final(u.text)
                else:
                    new = self._stable.partial(u.text)
                if new:
                    self.updates.put(new)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        language = next((u.language for u in self.finals if u.language), None)
        return Recognized(tuple(self.finals), self.seconds, language)

    def take_updates(self) -> list[str]:
        """Streamable text recognised since the last call."""
        out: list[str] = []
        while True:
            try:
                out.append(self.updates.get_nowait())
            except queue.Empty:
                return out
