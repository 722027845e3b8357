"""Silero's voice detector frame by frame, in the endpointer: voice told from steady noise."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from edge_assistant.audio.chunk import RATE, AudioChunk
from edge_assistant.audio.endpoint import Endpointer
from edge_assistant.audio.vad import WINDOW, SileroStream
from edge_assistant.bench.noise import noisy_copy, pink
from edge_assistant.settings import EndpointSettings
from tests.speech import piper_without_noise

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def questions() -> npt.NDArray[np.int16]:
    """Two questions 3 s apart, after 5 s of nothing, with pink noise 5 dB below them throughout."""
    gap = np.zeros(3 * RATE, dtype=np.int16)
    clean = np.concatenate(
        [
            np.zeros(5 * RATE, dtype=np.int16),
            piper_without_noise("What is the capital of France?"),
            gap,
            piper_without_noise("Turn on the light."),
            gap,
        ]
    )
    return noisy_copy(clean, pink(len(clean), np.random.default_rng(3)), 5.0)


def test_frame_by_frame_gives_the_probabilities_of_the_whole_run(questions: npt.NDArray[np.int16]) -> None:
    from faster_whisper.vad import get_vad_model

    samples = questions[: len(questions) // WINDOW * WINDOW]
    whole = np.asarray(get_vad_model()(samples.astype(np.float32) / 32768.0)).reshape(-1)
    frames = SileroStream()
    streamed = [frames(samples[i : i + WINDOW]) for i in range(0, len(samples), WINDOW)]
    # the library zeroes the end of the last frame, which a stream cannot know
    assert np.allclose(streamed[:-1], whole[:-1], atol=1e-4)


def _utterances(samples: npt.NDArray[np.int16], detector: str) -> list[tuple[float, float]]:
    endpointer = Endpointer(EndpointSettings(trailing_silence=0.9, detector=detector))
    step = RATE // 50
    found, start = [], 0.0
    for i in range(0, len(samples), step):
        chunk = AudioChunk(samples[i : i + step], i / RATE)
        for b in endpointer.feed(chunk):
            if b.kind == "start":
                start = b.time
            elif b.kind == "end":
                found.append((start, b.time))
    return found


@pytest.mark.parametrize("detector", ["silero", "auto"])
def test_silero_hears_the_gap_between_questions_in_steady_noise(
    questions: npt.NDArray[np.int16], detector: str
) -> None:
    """auto hands the decision to Silero once the noise fills even the gaps (here, in the 5 s before the
    first question)."""
    heard = _utterances(questions, detector)
    assert len(heard) == 2, heard
    assert 4.8 < heard[0][0] < 5.5
    assert len(_utterances(questions, "energy")) < 2  # loudness alone runs them together


def test_auto_goes_by_loudness_in_a_quiet_room() -> None:
    """No model runs, and the voice ends where loudness says (Silero would place it a frame later)."""
    gap = np.zeros(RATE, dtype=np.int16)
    samples = np.concatenate([gap, piper_without_noise("Turn off the lights."), gap, gap, gap, gap])
    endpointer = Endpointer(EndpointSettings(trailing_silence=0.9, detector="auto"))
    ends = [b.time for b in endpointer.feed(AudioChunk(samples, 0.0)) if b.kind == "end"]
    assert len(ends) == 1 and not endpointer.noisy and endpointer.lag == 0.0


@pytest.mark.parametrize("detector", ["energy", "silero", "auto"])
def test_the_voice_is_placed_where_it_ends_less_the_detectors_lag(detector: str) -> None:
    """Turn-taking measures Whisper's words against the end of the voice (a word after it was not said): the
    endpointer's end, less its detector's lag, is the last loud sample's within a frame, over several phrases
    (Silero hears voice about a frame longer than it lasts)."""
    offsets = []
    for text in ("Send a message to", "Wake me up at", "What is the capital of France?", "Turn off the lights."):
        speech = piper_without_noise(text)
        loud = np.flatnonzero(np.abs(speech.astype(np.int32)) > 300)
        samples = np.concatenate([np.zeros(RATE, dtype=np.int16), speech, np.zeros(RATE, dtype=np.int16)])
        endpointer = Endpointer(EndpointSettings(trailing_silence=0.9, detector=detector))
        ends = [b.time for b in endpointer.feed(AudioChunk(samples, 0.0)) if b.kind == "end"]
        assert len(ends) == 1, ends
        offsets.append(ends[0] - endpointer.lag - (RATE + int(loud[-1])) / RATE)
    assert abs(float(np.median(offsets))) < 0.025, offsets
