"""Note taking: speech in, final utterances appended to a notes file as they are recognised."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..audio.chunk import AudioChunk
from ..audio.sources import AudioSource
from ..llm.backend import Backend
from ..llm.conversation import Conversation
from ..llm.options import GenerationOptions, Message
from ..notes import NoteWriter
from ..stt.recognizer import Recognizer
from ..stt.types import Utterance

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


@dataclass
class Transcriber:
    """Wires a source, a recognizer and a notes writer."""

    source: AudioSource
    recognizer: Recognizer
    writer: NoteWriter
    on_partial: Callable[[Utterance], None] = lambda u: None
    on_final: Callable[[Utterance], None] = lambda u: None
    stats: TranscribeStats = field(default_factory=TranscribeStats)

    def _heard(self, chunks: Iterable[AudioChunk]) -> Iterator[AudioChunk]:
        for chunk in chunks:
            self.stats.seconds = chunk.end
            yield chunk

    def run(self) -> TranscribeStats:
        """Until the source ends (or is closed); the recognizer is loaded before the source opens."""
        self.recognizer.open()
        for utterance in self.recognizer.stream(self._heard(self.source.chunks())):
            if not utterance.final:
                self.on_partial(utterance)
                continue
            self.writer.write(utterance)
            self.stats.utterances += 1
            self.stats.words += len(utterance.text.split())
            self.stats.transcript.append(utterance.text)
            self.on_final(utterance)
        return self.stats


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
