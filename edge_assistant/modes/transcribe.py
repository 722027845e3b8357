"""Note taking: speech to notes with timestamps, each utterance saved the moment it is recognised; then,
when asked, bullet-point notes from the language model.

Live audio (a microphone, a pipe) is cut into utterances by the endpointer and each is filed as it ends. A
recording is read as fast as it decodes, in long windows that the recognizer segments its own way (faster-
whisper: its VAD and 30 s passes); each segment is filed as soon as it is recognised. A resumed run skips
the windows before the last record already in the notes, and the records already there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..audio.chunk import AudioChunk
from ..audio.sources import AudioSource, FileSource
from ..audio.windows import windows
from ..llm.backend import Backend
from ..memory import return_large_buffers
from ..notes import NoteWriter
from ..settings import WindowSettings
from ..stt.recognizer import Recognizer
from ..stt.types import Utterance
from .base import Mode
from .events import Event, Noted, Notice, Partial, Progress, Summarized
from .summary import summarize


@dataclass
class TranscribeStats:
    seconds: float = 0.0
    """Audio seconds heard."""
    utterances: int = 0
    """Utterances written in this run."""
    words: int = 0
    transcript: list[str] = field(default_factory=list)
    """The text of every utterance (for the summary; a resumed run starts with what the notes held)."""
    resumed_at: float = 0.0
    """Seconds of the input already in the notes when the run was resumed."""


class Transcriber(Mode):
    """Wires a recognizer and a notes writer (and a language model for the summary, when one is given)."""

    def __init__(
        self,
        recognizer: Recognizer,
        writer: NoteWriter,
        summarizer: Backend | None = None,
        window: WindowSettings | None = None,
    ) -> None:
        self.recognizer = recognizer
        self.writer = writer
        self.summarizer = summarizer
        self.window = window or WindowSettings()
        self.stats = TranscribeStats()

    def open(self) -> None:
        self.recognizer.open()
        self.writer.open()
        self.stats.resumed_at = self.writer.resumed_at
        self.stats.transcript = list(self.writer.resumed_texts)

    def close(self) -> None:
        self.recognizer.close()
        self.writer.close()
        if self.summarizer is not None:
            self.summarizer.close()

    def run(self, source: AudioSource) -> Iterator[Event]:
        """Until the source ends (or is closed); then the summary, when a model for it was given."""
        utterances = self._live(source) if source.live else self._recording(source)
        for item in utterances:
            if isinstance(item, Progress):
                yield item
                continue
            if not item.final:
                yield Partial(item)
                continue
            if self.writer.write(item):
                self.stats.utterances += 1
                self.stats.words += len(item.text.split())
                self.stats.transcript.append(item.text)
                yield Noted(item)
        if self.summarizer is not None and self.stats.transcript:
            self.recognizer.close()  # its memory goes back before the model loads
            yield Notice("summarising ...")
            self.summarizer.open()
            summary = summarize(self.summarizer, self.stats.transcript)
            yield self._file_summary(summary.text, summary.pieces)

    def _live(self, source: AudioSource) -> Iterator[Utterance]:
        return self.recognizer.stream(self._heard(source.chunks()))

    def _recording(self, source: AudioSource) -> Iterator[Utterance | Progress]:
        return_large_buffers()  # an hour takes no more memory than ten minutes
        total = source.duration
        stopped = source.stopped if isinstance(source, FileSource) else None
        for window in windows(self._heard(source.chunks()), self.window):
            if stopped is not None and stopped.is_set():
                return  # a stop leaves the window unread: a resumed run does it
            if window.end > self.stats.resumed_at:
                for utterance in self.recognizer.transcribe_window(window):
                    yield utterance
                    yield Progress(utterance.end, total)
                    if stopped is not None and stopped.is_set():
                        return
            yield Progress(window.end, total)

    def _heard(self, chunks: Iterable[AudioChunk]) -> Iterator[AudioChunk]:
        for chunk in chunks:
            self.stats.seconds = chunk.end
            yield chunk

    def _file_summary(self, notes: str, pieces: int) -> Summarized:
        """Markdown notes (and stdout) get the summary appended; other formats a `.summary.md` beside them."""
        block = f"\n### Summary\n\n{notes}\n"
        path = self.writer.path
        if path is None or self.writer.fmt == "md":
            self.writer.append_text(block)
            return Summarized(notes, None, pieces)
        target = path.with_suffix(".summary.md")
        with NoteWriter(target, "md", source=self.writer.source) as md:
            md.append_text(block)
        return Summarized(notes, target, pieces)
