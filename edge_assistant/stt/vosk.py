"""vosk: streaming recognition with partial results and per-word timings."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..audio.chunk import RATE, AudioChunk
from ..audio.endpoint import Endpointer
from ..audio.windows import Window
from ..errors import ModelFileError, NotInstalledError
from ..settings import EndpointSettings
from .recognizer import TurnEnd
from .types import Utterance, Word

log = logging.getLogger(__name__)


class VoskRecognizer:
    """A vosk model loaded by path (never by language name, which would download)."""

    engine = "vosk"
    streaming = True

    def __init__(
        self,
        model_path: Path,
        *,
        name: str | None = None,
        grammar: list[str] | None = None,
        endpoint: EndpointSettings | None = None,
        language: str | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.name = name or self.model_path.name
        self.grammar = grammar
        self.endpoint = endpoint or EndpointSettings()
        self.turn_end: TurnEnd | None = None
        self.language = language
        self._model: Any = None

    def open(self) -> None:
        if self._model is not None:
            return
        if not (self.model_path / "am" / "final.mdl").exists() and not (self.model_path / "final.mdl").exists():
            raise NotInstalledError(f"{self.model_path} is not a vosk model folder (no am/final.mdl)")
        import vosk

        vosk.SetLogLevel(-1)
        try:
            self._model = vosk.Model(str(self.model_path))
        except Exception as exc:  # vosk raises a bare Exception when loading fails
            raise ModelFileError(f"vosk cannot load {self.model_path}: {exc}") from None

    def close(self) -> None:
        self._model = None

    @property
    def model(self) -> Any:
        """The loaded vosk model (for a second recognizer on it, e.g. wake-word spotting)."""
        if self._model is None:
            raise RuntimeError("recognizer is not open")
        return self._model

    def _recognizer(self) -> Any:
        import vosk

        if self._model is None:
            raise RuntimeError("recognizer is not open")
        if self.grammar:
            rec = vosk.KaldiRecognizer(self._model, RATE, json.dumps([*self.grammar, "[unk]"], ensure_ascii=False))
        else:
            rec = vosk.KaldiRecognizer(self._model, RATE)
        rec.SetWords(True)
        return rec

    def _final(self, raw: str, start: float, end: float) -> Utterance | None:
        data = json.loads(raw)
        words = tuple(
            Word(w["word"], float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
            for w in data.get("result", [])
            if w.get("word") != "[unk]"
        )
        text = " ".join(w.text for w in words) if words else data.get("text", "").replace("[unk]", "").strip()
        if not text:
            return None
        if words:
            start, end = words[0].start, words[-1].end
        return Utterance(text, start, end, final=True, words=words, language=self.language)

    def _turn_over(self, endpointer: Endpointer, words: str) -> bool:
        """The words so far, after the silence heard since, end the speaker's turn."""
        silence = endpointer.silence
        return self.turn_end is not None and bool(words) and self.turn_end(words, silence, punctuated=False)

    def transcribe_window(self, window: Window) -> Iterator[Utterance]:
        """The final utterances of a window of a recording, streamed through a fresh recognizer (so the same
        window always gives the same text)."""
        return (u for u in self.stream(window.chunks()) if u.final)

    def stream(self, chunks: Iterable[AudioChunk]) -> Iterator[Utterance]:
        rec = self._recognizer()
        endpointer = Endpointer(self.endpoint)
        last_partial = ""
        utterance_start = 0.0
        now = 0.0
        for chunk in chunks:
            now = chunk.end
            boundaries = endpointer.feed(chunk)
            for b in boundaries:
                if b.kind == "start":
                    utterance_start = b.time
            if rec.AcceptWaveform(chunk.pcm):
                done = self._final(rec.Result(), utterance_start, now)
                last_partial = ""
                if done:
                    yield done
            elif (ended := any(b.kind in ("end", "cut") for b in boundaries)) or self._turn_over(
                endpointer, last_partial
            ):
                if not ended:
                    endpointer.end_now()
                done = self._final(rec.FinalResult(), utterance_start, now)
                last_partial = ""
                if done:
                    yield done
            else:
                partial = json.loads(rec.PartialResult()).get("partial", "").replace("[unk]", "").strip()
                if partial and partial != last_partial:
                    last_partial = partial
                    yield Utterance(partial, utterance_start, now, final=False, language=self.language)
        done = self._final(rec.FinalResult(), utterance_start, now)
        if done:
            yield done
