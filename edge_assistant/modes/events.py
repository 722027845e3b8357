"""What the modes yield as they run: typed events that a face (the command line, a server) shows or sends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..stt.types import Utterance
from .turns import Turn


@dataclass(frozen=True)
class Notice:
    """A status line for the user (listening, stopping, a dropped turn)."""

    text: str


@dataclass(frozen=True)
class Partial:
    """Words recognised so far in an utterance still being spoken (they may change)."""

    utterance: Utterance


@dataclass(frozen=True)
class Heard:
    """A final utterance."""

    utterance: Utterance


@dataclass(frozen=True)
class Asked:
    """The request the assistant answers (the utterance after the wake word, with one)."""

    text: str


@dataclass(frozen=True)
class AnswerText:
    """The next piece of an answer as it streams."""

    text: str


@dataclass(frozen=True)
class Answered:
    """A turn is over: answered, stopped by a barge-in, or dropped (its `dropped` says why)."""

    turn: Turn


@dataclass(frozen=True)
class Noted:
    """An utterance was written to the notes."""

    utterance: Utterance


@dataclass(frozen=True)
class Progress:
    """How far through a recording the work is."""

    done: float
    """Seconds of the input transcribed (or skipped, when resuming)."""
    total: float | None
    """Seconds of the input, when known."""


@dataclass(frozen=True)
class Translated:
    """An utterance and its translation (printed, filed and spoken by then)."""

    utterance: Utterance
    translation: str


@dataclass(frozen=True)
class Summarized:
    """Bullet-point notes of the transcript, appended to the notes or written to `path`."""

    text: str
    path: Path | None
    pieces: int = 1
    """Parts of the transcript summarised one by one (each fits the model's context) before the summary of
    their summaries."""


Event = Notice | Partial | Heard | Asked | AnswerText | Answered | Noted | Progress | Translated | Summarized
