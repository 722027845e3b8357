"""The voice assistant: listen, answer with the language model, speak the answer sentence by sentence.

Capture is gated while the assistant speaks (and a transcript that repeats what it just said is
dropped), so it does not answer itself. Barge-in (`interrupt()`) stops generation and speech at once.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..audio.chunk import AudioChunk
from ..llm.backend import Backend
from ..llm.conversation import Conversation
from ..llm.options import GenerationOptions, Reply
from ..stt.recognizer import Recognizer
from ..stt.types import Utterance
from ..text import SentenceSplitter
from .voice import Mouth
from .wake import WakeSpotter

log = logging.getLogger(__name__)
SYSTEM = "You are a helpful voice assistant. Give short, plain answers of one or two sentences."
RESET = re.compile(
    r"\b(reset (the )?conversation|forget (everything|our conversation)|start over|new conversation)\b", re.I
)
OPTIONS = GenerationOptions(temperature=0.2, top_k=40, repeat_penalty=1.1, seed=None, max_tokens=160)
ECHO_SIMILARITY = 0.6
EAGER_WORDS = 6
"""A first sentence may be spoken from its first comma once it has this many words (sooner first audio)."""
ECHO_WINDOW = 20.0
"""Seconds after an answer during which a transcript repeating it counts as an echo."""


@dataclass
class TurnTimings:
    """Seconds; 'from speech end' figures are measured from the end of the user's speech."""

    endpoint_s: float = 0.0
    """Trailing silence the endpointer waited for."""
    stt_s: float = 0.0
    """Recognition after the endpoint (the rest of speech end -> transcript)."""
    ttft_s: float = 0.0
    first_sentence_s: float = 0.0
    """From the request to the first complete sentence of the answer."""
    tts_s: float = 0.0
    """Synthesis of the first sentence."""
    first_audio_s: float = 0.0
    """End of speech -> first spoken audio ready to play."""
    total_s: float = 0.0


@dataclass
class Turn:
    transcript: str
    answer: str = ""
    interrupted: bool = False
    dropped: str = ""
    """Why the utterance got no answer (echo of our own speech, empty)."""
    time: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    timings: TurnTimings = field(default_factory=TurnTimings)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def similar(a: str, b: str) -> float:
    """1.0 when one text contains the other, else their character-level similarity."""
    x, y = _norm(a), _norm(b)
    if not x or not y:
        return 0.0
    if x in y:
        return 1.0
    return difflib.SequenceMatcher(None, x, y).ratio()


class TurnLog:
    """Every turn appended as one JSON line, flushed and fsynced (interrupted turns too)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, turn: Turn) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(turn), ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class Assistant:
    """Wires a recognizer, a language model and a voice."""

    recognizer: Recognizer
    backend: Backend
    mouth: Mouth
    system: str = SYSTEM
    options: GenerationOptions = OPTIONS
    log: TurnLog = field(default_factory=lambda: TurnLog(None))
    on_text: Callable[[str], None] = lambda piece: None
    on_transcript: Callable[[Utterance], None] = lambda u: None
    notify: Callable[[str], None] = lambda message: None
    live: bool = True
    """The input is a live microphone, which can hear the assistant's voice: gate it while speaking."""
    wake_word: str | None = None
    spotter: WakeSpotter | None = None
    """Listens for the wake word while the assistant speaks (barge-in by voice)."""
    barge: threading.Event = field(default_factory=threading.Event)
    _delivered: list[tuple[float, float]] = field(default_factory=list)
    _last_answer: str = ""
    _last_answer_at: float = 0.0

    def __post_init__(self) -> None:
        self.conversation = Conversation(self.backend, self.system, self.options, notify=self.notify)

    def open(self) -> None:
        """Load what is slow before listening: recognizer, voice, and the system prompt's KV state."""
        self.recognizer.open()
        self.mouth.open()
        warm = getattr(self.backend, "warm", None)
        if warm is not None:
            warm(self.conversation.prefix)

    def close(self) -> None:
        self.mouth.close()
        self.recognizer.close()

    # -- listening ---------------------------------------------------------------------------------
    def gate(self, chunks: Iterable[AudioChunk]) -> Iterator[AudioChunk]:
        """Silence the input while the assistant speaks; note when each chunk arrived."""
        for chunk in chunks:
            self._delivered.append((chunk.end, time.perf_counter()))
            del self._delivered[:-200]
            if self.live and self.mouth.gated:
                if self.spotter is not None and self.mouth.speaking.is_set() and self.spotter.feed(chunk):
                    self.notify("wake word: stopping the answer")
                    self.interrupt()
                yield AudioChunk(np.zeros_like(chunk.samples), chunk.start)
            else:
                yield chunk

    def heard_at(self, stream_time: float) -> float | None:
        """perf_counter time at which the audio at `stream_time` reached us (None if unknown)."""
        for end, wall in self._delivered:
            if end >= stream_time:
                return wall - (end - stream_time)
        return None

    def utterances(self, chunks: Iterable[AudioChunk]) -> Iterator[Utterance]:
        """Final utterances from gated audio (partials go to on_transcript too)."""
        for u in self.recognizer.stream(self.gate(chunks)):
            self.on_transcript(u)
            if u.final:
                yield u

    def after_wake_word(self, text: str) -> str | None:
        """With a wake word: the request that follows it, '' for the wake word alone, None without it."""
        if not self.wake_word:
            return text
        words = re.escape(self.wake_word.lower()).replace(r"\ ", r"[\s,]+")
        match = re.search(rf"\b{words}\b[\s,.!?]*", text.lower())
        return text[match.end() :].strip() if match else None

    # -- answering ---------------------------------------------------------------------------------
    def answer(self, utterance: Utterance, endpoint_s: float = 0.0) -> Turn:
        """Answer one final utterance: stream the text, speak each sentence as soon as it is complete."""
        heard = time.perf_counter()
        spoke_at = self.heard_at(utterance.end)
        text = utterance.text.strip()
        turn = Turn(text)
        if self.is_echo(text):
            turn.dropped = "echo of the assistant's own speech"
            self.log.write(turn)
            return turn
        if RESET.search(text):
            self.conversation.reset()
            turn.answer = "Okay, I have forgotten our conversation."
            self._speak_all(turn.answer)
            self.log.write(turn)
            return turn
        self.barge.clear()
        self.mouth.start_turn()
        reply = Reply()
        splitter = SentenceSplitter(eager_words=EAGER_WORDS)
        started = time.perf_counter()
        first_sentence: float | None = None
        stream = self.conversation.ask(text, reply)
        try:
            for piece in stream:
                self.on_text(piece)
                for sentence in splitter.feed(piece):
                    first_sentence = first_sentence or time.perf_counter()
                    self.mouth.say(sentence)
                    self.mouth.wait_synthesized()  # the model and the voice take turns on the CPU
                if self.barge.is_set():
                    turn.interrupted = True
                    break
            else:
                for sentence in splitter.flush():
                    first_sentence = first_sentence or time.perf_counter()
                    self.mouth.say(sentence)
                self.mouth.finish()
        except KeyboardInterrupt:
            turn.interrupted = True
            raise
        finally:
            stream.close()
            if turn.interrupted or self.barge.is_set():
                turn.interrupted = True
                self.mouth.interrupt()
                self.mouth.finish(timeout=2)
            turn.answer = reply.text
            self._record(turn, reply, utterance, spoke_at, heard, started, first_sentence, endpoint_s)
        return turn

    def _record(
        self,
        turn: Turn,
        reply: Reply,
        utterance: Utterance,
        spoke_at: float | None,
        heard: float,
        started: float,
        first_sentence: float | None,
        endpoint_s: float,
    ) -> None:
        self._last_answer, self._last_answer_at = " ".join(self.mouth.spoken) or turn.answer, time.monotonic()
        t = turn.timings
        t.endpoint_s = endpoint_s
        if spoke_at is not None:
            t.stt_s = max(0.0, heard - spoke_at - endpoint_s)
        t.ttft_s = reply.timings.ttft
        t.first_sentence_s = (first_sentence - started) if first_sentence else 0.0
        t.tts_s = self.mouth.synth_seconds or 0.0
        if spoke_at is not None and self.mouth.first_audio is not None:
            t.first_audio_s = self.mouth.first_audio - spoke_at
        t.total_s = time.perf_counter() - heard
        self.log.write(turn)

    def is_echo(self, text: str) -> bool:
        """A transcript that repeats what the assistant just said (its own voice leaking into the microphone)."""
        recent = time.monotonic() - self._last_answer_at < ECHO_WINDOW
        return recent and len(text.split()) >= 3 and similar(text, self._last_answer) >= ECHO_SIMILARITY

    def _speak_all(self, text: str) -> None:
        self.mouth.start_turn()
        self.on_text(text)
        self.mouth.say(text)
        self.mouth.finish()

    def interrupt(self) -> None:
        """Barge-in: stop generation and speech now."""
        self.barge.set()
        self.mouth.interrupt()
