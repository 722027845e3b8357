"""Wake-word spotting with vosk: a recognizer restricted to the wake phrase (keyword spotting)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..audio.chunk import RATE, AudioChunk


class WakeSpotter:
    """Hears only the wake phrase (or nothing); `feed` says whether it was just spoken."""

    def __init__(self, model: Any, phrase: str) -> None:
        import vosk

        self.phrase = phrase.lower().strip()
        self._pattern = re.compile(rf"\b{re.escape(self.phrase)}\b")
        self._rec = vosk.KaldiRecognizer(model, RATE, json.dumps([self.phrase, "[unk]"], ensure_ascii=False))

    def feed(self, chunk: AudioChunk) -> bool:
        if self._rec.AcceptWaveform(chunk.pcm):
            text = json.loads(self._rec.Result()).get("text", "")
        else:
            text = json.loads(self._rec.PartialResult()).get("partial", "")
        if self._pattern.search(text):
            self._rec.Reset()
            return True
        return False
