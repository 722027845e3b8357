"""The barge-in detector on recorded speech with a fake capture clock: speech over the assistant's voice stops it
after six windows of the detector (192 ms from its onset); a shorter sound, or speech while the assistant is
silent, does not."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pytest

from edge_assistant.audio.chunk import RATE, AudioChunk
from edge_assistant.audio.sources import FileSource
from edge_assistant.modes.bargein import VoiceOver
from tests.speech import synth_piper

BLOCK = 320
"""Samples per captured chunk (20 ms, as the microphone delivers them)."""


class FakeMouth:
    def __init__(self, speaking: bool) -> None:
        self.speaking = threading.Event()
        if speaking:
            self.speaking.set()


def _fed(samples: npt.NDArray[np.int16], speaking: bool = True) -> list[tuple[float, float]]:
    """Each barge-in as (onset, capture time of the chunk that set it off), on the clock of the samples."""
    found: list[tuple[float, float]] = []
    at = [0.0]
    detector = VoiceOver(cast(Any, FakeMouth(speaking)), lambda onset: found.append((onset, at[0])))
    detector.open()
    try:
        for i in range(0, len(samples) - BLOCK + 1, BLOCK):
            at[0] = (i + BLOCK) / RATE
            detector.feed(AudioChunk(samples[i : i + BLOCK], i / RATE, captured=at[0]))
            deadline = time.monotonic() + 5
            while detector._chunks.qsize() and time.monotonic() < deadline:  # one chunk at a time: a clock
                time.sleep(0.001)
            time.sleep(0.005)  # and its windows judged
    finally:
        detector.close()
    return found


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> npt.NDArray[np.int16]:
    """A spoken question with half a second of silence before it."""
    wav = synth_piper("What is the capital of France?", Path(tmp_path_factory.mktemp("barge")) / "q.wav")
    voice = FileSource(wav).read()
    return np.concatenate([np.zeros(RATE // 2, dtype=np.int16), voice, np.zeros(RATE // 2, dtype=np.int16)])


@pytest.mark.slow
def test_speech_over_the_answer_stops_it_after_six_windows(speech: npt.NDArray[np.int16]) -> None:
    found = _fed(speech)
    assert found, "no barge-in"
    onset, noticed = found[0]
    assert 0.4 < onset < 0.9
    assert 0.18 <= noticed - onset < 0.215, f"noticed {1000 * (noticed - onset):.0f} ms after the onset"


@pytest.mark.slow
def test_a_short_sound_or_speech_in_silence_stops_nothing(speech: npt.NDArray[np.int16]) -> None:
    assert not _fed(speech, speaking=False)
    loud = np.flatnonzero(np.abs(speech.astype(np.int32)) > 1000)[0]
    burst = speech.copy()
    burst[loud + int(0.15 * RATE) :] = 0  # 150 ms of the voice, then silence: a cough's length
    assert not _fed(burst)
