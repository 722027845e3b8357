"""What recognizers produce."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Word:
    """One recognised word with its timing."""

    text: str
    start: float
    """Seconds from the start of the stream."""
    end: float
    confidence: float = 1.0
    """0..1 (vosk's conf, whisper's probability)."""


@dataclass(frozen=True)
class Utterance:
    """A recognised stretch of speech: partial (still changing) or final."""

    text: str
    start: float
    """Seconds from the start of the stream."""
    end: float
    final: bool = True
    words: tuple[Word, ...] = field(default=())
    language: str | None = None
    """Detected or configured language (ISO 639-1), when known."""

    @property
    def seconds(self) -> float:
        return self.end - self.start
