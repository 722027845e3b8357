"""What one turn of the voice assistant is (heard, answered, timed), the turn log, and the echo test."""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..files import append_synced, open_append


@dataclass
class TurnTimings:
    """Seconds; 'from speech end' figures are measured from the end of the user's speech as the endpointer
    placed it (its last loud frame)."""

    turn_end_s: float = 0.0
    """End of speech -> the turn is over and its words are known (the silence waited, and recognition)."""
    ttft_s: float = 0.0
    first_sentence_s: float = 0.0
    """From the request to the first complete sentence of the answer."""
    tts_s: float = 0.0
    """Synthesis of the first sentence until its first piece is ready (a split Piper voice makes it in pieces)."""
    first_audio_s: float = 0.0
    """End of speech -> first spoken audio ready to play."""
    first_heard_s: float = 0.0
    """End of speech -> first spoken audio heard from the sound card (0 when it goes to a file)."""
    barge_in_s: float = 0.0
    """A person started speaking over the answer -> the assistant's voice went silent (0: no barge-in)."""
    total_s: float = 0.0


@dataclass
class Turn:
    transcript: str
    answer: str = ""
    interrupted: bool = False
    dropped: str = ""
    """Why the utterance got no answer (echo of our own speech, empty)."""
    drafted: bool = False
    """The answer was begun during the silence before the turn ended (`modes/draft.py`)."""
    time: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    timings: TurnTimings = field(default_factory=TurnTimings)


class TurnLog:
    """Every turn appended as one JSON line, synced to disk (interrupted turns too)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, turn: Turn) -> None:
        if self.path is None:
            return
        fd = open_append(self.path)
        try:
            append_synced(fd, (json.dumps(asdict(turn), ensure_ascii=False) + "\n").encode("utf-8"))
        finally:
            os.close(fd)


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


class EchoGuard:
    """Recognises the assistant's own words coming back through the microphone: a transcript that repeats what
    it said in the last `window` seconds."""

    def __init__(self, similarity: float = 0.6, window: float = 20.0) -> None:
        self.similarity = similarity
        self.window = window
        self._said = ""
        self._at = -math.inf

    def said(self, text: str) -> None:
        self._said, self._at = text, time.monotonic()

    def is_echo(self, text: str) -> bool:
        recent = time.monotonic() - self._at < self.window
        return recent and len(text.split()) >= 3 and similar(text, self._said) >= self.similarity
