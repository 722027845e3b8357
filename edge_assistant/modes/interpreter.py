"""A live interpreter: each final utterance is translated as soon as it ends (and optionally spoken)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..audio.chunk import AudioChunk
from ..notes import NoteWriter
from ..stt.recognizer import Recognizer
from ..stt.types import Utterance
from .translate import Translator
from .voice import Mouth


@dataclass
class Interpreter:
    """Recognizer -> translator -> printed (and spoken, and filed) translation, utterance after utterance."""

    recognizer: Recognizer
    translator: Translator
    mouth: Mouth | None = None
    writer: NoteWriter | None = None
    on_pair: Callable[[Utterance, str], None] = lambda u, text: None
    on_partial: Callable[[Utterance], None] = lambda u: None
    live: bool = True
    """The input is a live microphone: gate it while the translation is spoken."""
    count: int = 0

    def run(self, chunks: Iterable[AudioChunk]) -> int:
        """Until the audio ends; returns the number of utterances translated."""
        for u in self.recognizer.stream(self._gated(chunks)):
            if not u.final:
                self.on_partial(u)
                continue
            translation = self.translator.sentence(u.text).text
            self.count += 1
            self.on_pair(u, translation)
            if self.writer is not None:
                self.writer.write(u, translation)
            if self.mouth is not None and translation:
                self.mouth.start_turn()
                self.mouth.say(translation)
                self.mouth.finish()
        return self.count

    def _gated(self, chunks: Iterable[AudioChunk]) -> Iterable[AudioChunk]:
        import numpy as np

        for chunk in chunks:
            if self.live and self.mouth is not None and self.mouth.gated:
                yield AudioChunk(np.zeros_like(chunk.samples), chunk.start)
            else:
                yield chunk
