"""A recognised recording in the response formats of the OpenAI transcription API."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..languages import NAMES
from ..notes import clock
from .asr import Recognized

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain",
    "srt": "text/plain",
    "vtt": "text/vtt",
}


def check_format(fmt: str | None) -> str:
    fmt = (fmt or "json").strip().lower()
    if fmt not in FORMATS:
        raise UsageError(f"unknown response_format {fmt!r}; one of: {', '.join(FORMATS)}")
    return fmt


def as_json(done: Recognized) -> dict[str, Any]:
    return {"text": done.text}


def as_text(done: Recognized) -> str:
    return done.text + "\n"


def as_srt(done: Recognized) -> str:
    cues = [
        f"{n}\n{clock(u.start, ',')} --> {clock(u.end, ',')}\n{u.text}\n"
        for n, u in enumerate(done.utterances, start=1)
    ]
    return "\n".join(cues)


def as_vtt(done: Recognized) -> str:
    cues = [f"{clock(u.start)} --> {clock(u.end)}\n{u.text}\n" for u in done.utterances]
    return "WEBVTT\n\n" + "\n".join(cues)


def as_verbose(done: Recognized, words: bool) -> dict[str, Any]:
    """Segments (one per utterance) with their times; words with theirs when asked for and known."""
    out: dict[str, Any] = {
        "task": "transcribe",
        "language": NAMES.get(done.language or "", done.language or "").lower() or None,
        "duration": round(done.seconds, 3),
        "text": done.text,
        "segments": [
            {
                "id": n,
                "seek": 0,
                "start": round(u.start, 3),
                "end": round(u.end, 3),
                "text": u.text,
                "tokens": [],
                "temperature": 0.0,
            }
            for n, u in enumerate(done.utterances)
        ],
    }
    if words:
        out["words"] = [
            {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
            for u in done.utterances
            for w in u.words
        ]
    return out
