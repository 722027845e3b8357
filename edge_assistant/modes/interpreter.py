"""A live interpreter: each final utterance is translated as soon as it ends (and filed, and spoken)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..audio.chunk import AudioChunk
from ..audio.sources import AudioSource
from ..notes import NoteWriter
from ..stt.recognizer import Recognizer
from ..tts.delivery import Mouth
from .base import Mode
from .events import Event, Partial, Translated
from .translate import Translator
from .turns import EchoGuard


class Interpreter(Mode):
    """Recognizer -> translator -> translation (filed in a bilingual transcript, spoken), utterance after
    utterance."""

    def __init__(
        self,
        recognizer: Recognizer,
        translator: Translator,
        mouth: Mouth | None = None,
        writer: NoteWriter | None = None,
        *,
        live: bool = True,
    ) -> None:
        self.recognizer = recognizer
        self.translator = translator
        self.mouth = mouth
        self.writer = writer
        self.live = live
        """The input is a live microphone: gate it while the translation is spoken."""
        self.count = 0
        """Utterances translated so far."""
        self.echo = EchoGuard()

    def open(self) -> None:
        self.recognizer.open()
        if self.mouth is not None:
            self.mouth.open()
        self.translator.open()
        if self.writer is not None:
            self.writer.open()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.mouth is not None:
            self.mouth.close()
        self.recognizer.close()
        self.translator.close()

    def run(self, source: AudioSource) -> Iterator[Event]:
        """Until the audio ends (or the source is closed)."""
        for u in self.recognizer.stream(self._gated(source.chunks())):
            if not u.final:
                yield Partial(u)
                continue
            if self.live and self.echo.is_echo(u.text):
                continue  # its own spoken translation, heard back
            translation = self.translator.sentence(u.text).text
            self.count += 1
            if self.writer is not None:
                self.writer.write(u, translation)
            yield Translated(u, translation)
            if self.mouth is not None and translation:
                self.echo.said(translation)
                self.mouth.start_turn()
                self.mouth.say(translation)
                self.mouth.finish()

    def _gated(self, chunks: Iterable[AudioChunk]) -> Iterable[AudioChunk]:
        return self.mouth.gate(chunks) if self.live and self.mouth is not None else chunks
