"""Note taking: speech to notes with timestamps, each utterance saved the moment it is recognised; then,
when asked, bullet-point notes from the language model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..audio.chunk import AudioChunk
from ..audio.sources import AudioSource
from ..llm.backend import Backend
from ..llm.conversation import Conversation
from ..llm.options import GenerationOptions, Message
from ..notes import NoteWriter
from ..stt.recognizer import Recognizer
from .base import Mode
from .events import Event, Noted, Notice, Partial, Summarized

SUMMARY_SYSTEM = (
    "You turn meeting transcripts into notes. Write 3 to 8 short bullet points (lines starting with "
    "'- ') with the decisions, facts and tasks. No introduction."
)


@dataclass
class TranscribeStats:
    seconds: float = 0.0
    """Audio seconds heard."""
    utterances: int = 0
    words: int = 0
    transcript: list[str] = field(default_factory=list)


class Transcriber(Mode):
    """Wires a recognizer and a notes writer (and a language model for the summary, when one is given)."""

    def __init__(self, recognizer: Recognizer, writer: NoteWriter, summarizer: Backend | None = None) -> None:
        self.recognizer = recognizer
        self.writer = writer
        self.summarizer = summarizer
        self.stats = TranscribeStats()

    def open(self) -> None:
        self.recognizer.open()
        self.writer.open()

    def close(self) -> None:
        self.recognizer.close()
        self.writer.close()
        if self.summarizer is not None:
            self.summarizer.close()

    def run(self, source: AudioSource) -> Iterator[Event]:
        """Until the source ends (or is closed); then the summary, when a model for it was given."""
        for utterance in self.recognizer.stream(self._heard(source.chunks())):
            if not utterance.final:
                yield Partial(utterance)
                continue
            self.writer.write(utterance)
            self.stats.utterances += 1
            self.stats.words += len(utterance.text.split())
            self.stats.transcript.append(utterance.text)
            yield Noted(utterance)
        if self.summarizer is not None and self.stats.transcript:
            self.recognizer.close()  # its memory goes back before the model loads
            yield Notice("summarising ...")
            self.summarizer.open()
            yield self._file_summary(summarize(self.summarizer, self.stats.transcript))

    def _heard(self, chunks: Iterable[AudioChunk]) -> Iterator[AudioChunk]:
        for chunk in chunks:
            self.stats.seconds = chunk.end
            yield chunk

    def _file_summary(self, notes: str) -> Summarized:
        """Markdown notes (and stdout) get the summary appended; other formats a `.summary.md` beside them."""
        block = f"\n### Summary\n\n{notes}\n"
        path = self.writer.path
        if path is None or self.writer.fmt == "md":
            self.writer.append_text(block)
            return Summarized(notes, None)
        target = path.with_suffix(".summary.md")
        with NoteWriter(target, "md", source=self.writer.source) as md:
            md.append_text(block)
        return Summarized(notes, target)


def summarize(backend: Backend, transcript: list[str]) -> str:
    """Bullet-point notes of a transcript (its most recent part when it is longer than the context)."""
    conversation = Conversation(
        backend,
        SUMMARY_SYSTEM,
        GenerationOptions(temperature=0.2, top_k=20, repeat_penalty=1.15, seed=0, max_tokens=300),
    )
    text = "\n".join(transcript)
    budget = max(256, backend.context_length - 400)
    while len(text) > 200 and backend.count_tokens([*conversation.prefix, Message("user", text)]) > budget:
        text = text[len(text) // 4 :]
    return "".join(conversation.ask(f"Transcript:\n{text}\n\nNotes:")).strip()
