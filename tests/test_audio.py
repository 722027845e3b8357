"""Audio sources and endpointing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from edge_assistant.audio.chunk import RATE, AudioChunk
from edge_assistant.audio.endpoint import Endpointer
from edge_assistant.audio.sources import FileSource, RawSource, open_source, to_mono_int16
from edge_assistant.errors import AudioError, UsageError
from edge_assistant.settings import EndpointSettings


def tone(seconds: float, rate: int = RATE, freq: float = 440.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype(np.int16)


def test_file_at_any_rate_and_channels_becomes_16k_mono(tmp_path: Path) -> None:
    mono = tone(1.0, 16000)
    soundfile.write(tmp_path / "a.wav", mono, 16000, subtype="PCM_16")
    stereo44 = np.stack([tone(1.0, 44100)] * 2, axis=1)
    soundfile.write(tmp_path / "b.wav", stereo44, 44100, subtype="PCM_16")
    soundfile.write(tmp_path / "c.flac", tone(1.0, 48000), 48000)
    lengths = {name: len(FileSource(tmp_path / name).read()) for name in ("a.wav", "b.wav", "c.flac")}
    assert all(abs(n - RATE) <= 32 for n in lengths.values()), lengths
    b = FileSource(tmp_path / "b.wav").read()
    assert 0.25 * 32767 < np.abs(b).max() < 0.35 * 32767


def test_chunks_are_timed(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "a.wav", tone(0.35), RATE, subtype="PCM_16")
    chunks = list(FileSource(tmp_path / "a.wav").chunks())
    assert [round(c.start, 2) for c in chunks] == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
    assert round(chunks[-1].end, 3) == 0.35


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, UsageError, "no such audio file"),
        (b"", AudioError, "is empty"),
        (b"this is not audio at all" * 10, AudioError, "cannot read"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes | None, error: type[Exception], message: str) -> None:
    path = tmp_path / "x.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        FileSource(path).read()


def test_raw_stdin_source() -> None:
    samples = tone(0.25)
    chunks = list(RawSource(io.BytesIO(samples.astype("<i2").tobytes() + b"\x01")).chunks())
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), samples)
    assert isinstance(open_source("-"), RawSource)


def test_float_and_stereo_conversion() -> None:
    data = np.array([[0.5, -0.5], [1.0, 1.0]], dtype=np.float32)
    assert to_mono_int16(data).tolist() == [0, 32767]


def _feed(endpointer: Endpointer, samples: np.ndarray) -> list[tuple[str, float]]:
    out = []
    for i in range(0, len(samples), 1600):
        out += [(b.kind, round(b.time, 2)) for b in endpointer.feed(AudioChunk(samples[i : i + 1600], i / RATE))]
    out += [(b.kind, round(b.time, 2)) for b in endpointer.finish()]
    return [e for e in out if e[0] != "pause"]


def test_two_utterances_separated_by_silence() -> None:
    silence = np.zeros(RATE, dtype=np.int16)
    audio = np.concatenate([silence, tone(1.0), silence, tone(0.5), silence])
    events = _feed(Endpointer(EndpointSettings(trailing_silence=0.6)), audio)
    assert [e[0] for e in events] == ["start", "end", "start", "end"]
    assert abs(events[0][1] - 1.0) < 0.05 and abs(events[1][1] - 2.0) < 0.05
    assert abs(events[2][1] - 3.0) < 0.05 and abs(events[3][1] - 3.5) < 0.05


def test_short_pause_does_not_end_an_utterance() -> None:
    audio = np.concatenate([tone(0.5), np.zeros(int(RATE * 0.3), dtype=np.int16), tone(0.5)])
    assert [e[0] for e in _feed(Endpointer(EndpointSettings(trailing_silence=0.6)), audio)] == ["start", "end"]


def test_endless_noise_is_cut_at_the_maximum_length() -> None:
    noise = (np.random.default_rng(0).standard_normal(RATE * 5) * 3000).astype(np.int16)
    # loudness takes it for speech that never ends (auto hands such a room to Silero, which hears no voice)
    kinds = [e[0] for e in _feed(Endpointer(EndpointSettings(max_utterance=2.0, detector="energy")), noise)]
    assert kinds[:3] == ["start", "cut", "cut"]
    assert _feed(Endpointer(EndpointSettings(max_utterance=2.0)), noise) == []


def test_a_click_is_not_speech() -> None:
    audio = np.concatenate([np.zeros(RATE, dtype=np.int16), tone(0.05), np.zeros(RATE, dtype=np.int16)])
    assert _feed(Endpointer(), audio) == []


def test_windows_are_cut_at_the_quietest_moment_and_the_same_from_any_cut() -> None:
    from edge_assistant.audio.windows import Window, windows
    from edge_assistant.settings import WindowSettings

    rng = np.random.default_rng(1)
    loud = (rng.standard_normal(RATE * 65) * 3000).astype(np.int16)
    for quiet in (8.0, 19.0, 36.0, 53.0):  # pauses a quarter second long
        loud[int(quiet * RATE) : int((quiet + 0.25) * RATE)] = 0
    settings = WindowSettings(length=20.0, search=5.0)
    cut = list(windows(Window(loud, 0.0).chunks(), settings))
    # each cut is in the pause within the last 5 s of its window (not the one at 8 s)
    assert [w.start for w in cut] == pytest.approx([0.0, 19.15, 36.15, 53.15], abs=0.06)
    assert np.array_equal(np.concatenate([w.samples for w in cut]), loud)
    # from the start of the second window, the windows are the same
    again = list(windows(Window(loud[len(cut[0].samples) :], cut[0].end).chunks(), settings))
    assert [(w.start, len(w.samples)) for w in again] == [(w.start, len(w.samples)) for w in cut[1:]]


def test_windows_keep_the_audio_read_before_a_decoding_error() -> None:
    from edge_assistant.audio.windows import windows

    def broken() -> Iterator[AudioChunk]:
        yield AudioChunk(tone(1.0), 0.0)
        raise AudioError("x.m4a is damaged after 1.0 s")

    got = []
    with pytest.raises(AudioError, match="damaged"):
        for window in windows(broken()):
            got.append(window)
    assert len(got) == 1 and len(got[0].samples) == RATE
