"""Whisper on a window cut to the utterance, for conversation.

faster-whisper pads every piece of audio to Whisper's 30-second window, and the encoder's cost grows with
the window (its attention with the square of it): a 2-second question costs as much as 30 seconds of
speech. CTranslate2's encoder takes shorter windows, and Whisper still transcribes well when the window
holds the utterance with a few seconds of padding, so a short question is encoded in a 10-second window:
several times less work, and the answer starts that much sooner. Greedy decoding, no timestamp tokens; on
request the words are placed in time by one alignment pass over the text found (cross-attention, as
faster-whisper's word timestamps): what turn-taking needs to tell a word heard from one Whisper wrote into the
silence after the voice.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio.chunk import RATE

MIN_WINDOW = 10.0
"""Seconds: shorter windows make Whisper repeat itself instead of ending the transcript."""
PADDING = 2.0
"""Seconds of silence the window keeps after the utterance (Whisper expects to hear the speech end)."""
FULL_WINDOW = 30.0
NO_SPEECH = 0.6
"""Above this no-speech probability, with a low average log probability, the window holds no speech."""
LOW_LOGPROB = -1.0
BEAM = 1
TOKENS_PER_SECOND = 8
"""Most text tokens a second of speech gives (fast speech gives about five): with SPARE_TOKENS, a bound on the
tokens decoded, which stops a decoding that loops ("What color is the sky on a clear day? What color is the sky
on a clear day? ...", 224 tokens: a second of a two-core machine) soon after the speech's own words."""
SPARE_TOKENS = 10
PREPENDED = "\"'“¿([{-"
APPENDED = "\"'.。,，!！?？:：”)]}、"
"""Punctuation joined to the word after or before it, as faster-whisper's word timestamps join it."""


class Superseded(Exception):
    """The transcription was stopped between its steps: its text is no longer wanted."""


@dataclass(frozen=True)
class TimedWord:
    """A word of the window's text: seconds from the start of the samples, and Whisper's probability of it."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class WindowText:
    text: str
    language: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[TimedWord, ...] = ()
    """When asked for: the words of `text` in time, punctuation joined to them."""

    @property
    def speech(self) -> bool:
        """False when Whisper says the window holds no speech (and is not sure of the words either)."""
        return bool(self.text) and not (self.no_speech_prob > NO_SPEECH and self.avg_logprob < LOW_LOGPROB)


def window_seconds(samples: int) -> float:
    """The window for an utterance of `samples`: the utterance plus padding, at least MIN_WINDOW, whole
    seconds, at most Whisper's own 30."""
    return float(min(FULL_WINDOW, max(MIN_WINDOW, math.ceil(samples / RATE + PADDING))))


def transcribe_short(
    model: Any,
    samples: npt.NDArray[np.int16],
    language: str | None,
    words: bool = False,
    stop: threading.Event | None = None,
) -> WindowText:
    """Greedy transcription of one utterance (16 kHz) by a faster-whisper `WhisperModel` in a short window.

    `language` None detects it (multilingual models); English-only models are always English. `words`: align
    the text's words in time too (one more decoder pass over the text, a fraction of the transcription). A set
    `stop` ends the work after the step under way (encoder, decoder) with `Superseded`.
    """
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    seconds = window_seconds(len(samples))
    frames = int(seconds * 100)
    # silence after the speech, as Whisper was trained: padded audio, whose log-mel floor follows the speech
    audio = np.zeros(int(seconds * RATE), dtype=np.float32)
    audio[: min(len(samples), len(audio))] = samples[: len(audio)].astype(np.float32) / 32768.0
    features = model.feature_extractor(audio)[:, :frames]
    encoded = model.encode(features)
    _check(stop)
    if not model.model.is_multilingual:
        language = "en"
    elif language is None:
        detected = model.model.detect_language(encoded)[0]
        language = detected[0][0][2:-2] if detected else "en"
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
    result = model.model.generate(
        encoded,
        [prompt],
        beam_size=BEAM,
        max_length=min(model.max_length, 224, len(prompt) + token_budget(len(samples))),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, (-1,)),
        repetition_penalty=1.0,
    )[0]
    tokens = result.sequences_ids[0]
    _check(stop)
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)  # the score is divided by the length
    timed = _align(model, tokenizer, tokens, encoded, len(samples), frames) if words and tokens else ()
    return WindowText(
        without_repeats(tokenizer.decode(tokens).strip()),
        language,
        float(avg_logprob),
        float(result.no_speech_prob),
        timed,
    )


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Superseded


def token_budget(samples: int) -> int:
    """Text tokens to decode at most for `samples` of 16 kHz speech."""
    return SPARE_TOKENS + math.ceil(TOKENS_PER_SECOND * samples / RATE)


_SENTENCE = re.compile(r"[^.?!。？！]+(?:[.?!。？！]+|$)")


def without_repeats(text: str) -> str:
    """`text` with a sentence that follows itself word for word (a decoding loop) kept once, and an unclosed
    start of it again at the end (where the loop was stopped) dropped."""
    sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
    kept: list[str] = []
    looped = False
    for sentence in sentences:
        if kept and _words(sentence) == _words(kept[-1]):
            looped = True
            continue
        kept.append(sentence)
    last = kept[-1] if kept else ""
    if len(kept) > 1 and last[-1:].isalnum() and _words(kept[-2])[: len(_words(last))] == _words(last):
        kept.pop()  # the loop's next turn, cut short by the token bound
        looped = True
    return " ".join(kept) if looped else text


def _words(sentence: str) -> list[str]:
    return re.findall(r"[\w']+", sentence.lower())


def _align(
    model: Any, tokenizer: Any, tokens: list[int], encoded: Any, samples: int, frames: int
) -> tuple[TimedWord, ...]:
    """The words of `tokens` in time, searched over the speech and the padding after it (where Whisper puts a
    word it only expected)."""
    from faster_whisper.transcribe import merge_punctuations

    searched = min(frames, int((samples / RATE + PADDING) * 100))
    found = model.find_alignment(tokenizer, [tokens], encoded, searched)
    aligned = found[0] if found else []
    merge_punctuations(aligned, PREPENDED, APPENDED)
    return tuple(
        TimedWord(str(w["word"]).strip(), float(w["start"]), float(w["end"]), float(w["probability"]))
        for w in aligned
        if str(w["word"]).strip()
    )
