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
class Translated:
    """An utterance and its translation (printed, filed and spoken by then)."""

    utterance: Utterance
    translation: str


@dataclass(frozen=True)
class Summarized:
    """Bullet-point notes of the transcript, appended to the notes or written to `path`."""

    text: str
    path: Path | None


Event = Notice | Partial | Heard | Asked | AnswerText | Answered | Noted | Translated | Summarized
