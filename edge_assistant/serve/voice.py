"""Synthesised speech as the faces send it: 16-bit PCM pieces sentence by sentence, or one whole WAV file."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator, Sequence

from ..errors import TooLargeError, UsageError
from ..text import CLAUSE, speakable, split_sentences
from ..tts.output import join, resample
from ..tts.speaker import Speaker, Speech

SAMPLES_PER_CHUNK = 1024
"""Samples per audio chunk sent to a client (what Home Assistant's own services send)."""
EAGER_WORDS = 4
"""A first sentence is spoken from its first comma once it has this many words (its audio starts sooner)."""


def clean_text(text: object, limit: int) -> str:
    """The text of a speech request, checked: a string, not too long (markdown marks are not read aloud)."""
    if not isinstance(text, str):
        raise UsageError("the text to speak must be a string")
    if len(text) > limit:
        raise TooLargeError(f"text of {len(text)} characters is longer than the {limit} this server speaks at once")
    return speakable(text)


def lead(text: str, eager_words: int = EAGER_WORDS) -> list[str]:
    """The text as the voice is given it: a long first sentence's first clause alone (ending at a comma,
    semicolon or colon after at least `eager_words` words; 0: never), then the rest."""
    first = next(iter(split_sentences(text)), "") if eager_words else ""
    start = text.find(first)
    for match in CLAUSE.finditer(first):
        if len(first[: match.start()].split()) >= eager_words:
            cut = start + match.end()
            return [part for part in (text[:cut].strip(), text[cut:].strip()) if part]
    return [text] if text.strip() else []


def sentences(speaker: Speaker, text: str, eager_words: int = EAGER_WORDS) -> Iterator[Speech]:
    """The speech of `text` piece by piece, as each is ready (the first is heard while the rest are made; a split
    Piper voice gives a sentence in pieces, the first of 0.35 s); with `eager_words`, a long first sentence is
    made in two, from its first comma."""
    for part in lead(text, eager_words):
        for piece in speaker.synthesize_stream(part):
            if len(piece.samples):
                yield piece


def pcm(speech: Speech) -> bytes:
    return speech.samples.astype("<i2", copy=False).tobytes()


def pcm_chunks(speech: Speech, samples: int = SAMPLES_PER_CHUNK) -> Iterator[bytes]:
    data = pcm(speech)
    step = 2 * samples
    for i in range(0, len(data), step):
        yield data[i : i + step]


def wav_bytes(pieces: Sequence[Speech], rate: int | None = None) -> bytes:
    """A whole 16-bit mono WAV file of the pieces (at `rate`, else the first piece's)."""
    whole = join(list(pieces), rate)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(whole.rate)
        wav.writeframes(pcm(whole))
    return out.getvalue()


def at_rate(speech: Speech, rate: int) -> Speech:
    return Speech(resample(speech.samples, speech.rate, rate), rate, speech.text)
