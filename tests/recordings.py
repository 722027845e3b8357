"""Long recordings made by the tests: speech clips placed at known times in silence, written as WAV, FLAC (by
libsndfile) or MP3, M4A/AAC, Opus (by FFmpeg through PyAV), at 48 kHz stereo like a phone or a video call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from edge_assistant.audio.sources import FileSource

RATE = 48000


@dataclass(frozen=True)
class Placed:
    text: str
    start: float
    """Seconds into the recording where the speech of the clip begins (its leading silence skipped)."""
    end: float


def onset(samples: np.ndarray, rate: int, level: float = 0.02) -> tuple[float, float]:
    """Where the sound in a clip begins and ends (seconds)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.float32)) > level * 32767)
    return (loud[0] / rate, loud[-1] / rate) if len(loud) else (0.0, 0.0)


def arrange(clips: list[tuple[str, Path]], gaps: list[float], lead: float = 1.0) -> tuple[np.ndarray, list[Placed]]:
    """The clips one after another, `gaps[i]` seconds of silence after clip i: float32 (n, 2) at 48 kHz."""
    pieces = [np.zeros(int(lead * RATE), dtype=np.float32)]
    placed = []
    at = lead
    for (text, path), gap in zip(clips, gaps, strict=True):
        mono16 = FileSource(path).read()
        audio = soxr.resample(mono16.astype(np.float32) / 32768.0, 16000, RATE)
        begin, finish = onset(mono16, 16000)
        placed.append(Placed(text, at + begin, at + finish))
        pieces += [audio, np.zeros(int(gap * RATE), dtype=np.float32)]
        at += len(audio) / RATE + int(gap * RATE) / RATE
    mono = np.concatenate(pieces)
    return np.stack([mono, mono * 0.8], axis=1), placed


def write(data: np.ndarray, path: Path) -> Path:
    """WAV/FLAC through libsndfile; MP3, M4A and Opus through PyAV's encoders."""
    kind = path.suffix.lower()
    if kind in (".wav", ".flac"):
        soundfile.write(path, data, RATE, subtype="PCM_16")
        return path
    import av

    codec = {".mp3": "libmp3lame", ".m4a": "aac", ".opus": "libopus"}[kind]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=RATE, layout="stereo")
        size = stream.codec_context.frame_size or 1024
        for i in range(0, len(data), size):
            block = np.ascontiguousarray(data[i : i + size].T, dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            frame.rate, frame.pts = RATE, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
