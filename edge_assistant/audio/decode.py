"""Audio files decoded in blocks: libsndfile (soundfile) for what it reads (WAV, FLAC, OGG, MP3), FFmpeg's
libraries (PyAV, which faster-whisper already brings) for the rest (m4a, mp4, webm, opus, ...). Each block is
mixed down to mono as float32 at the file's own rate; memory does not grow with the file."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import AudioError, first_line

log = logging.getLogger(__name__)

MIN_RATE = 4_000
"""Lowest sample rate accepted (Hz): below it a header is wrong, not audio."""
MAX_RATE = 384_000
MAX_CHANNELS = 64
BLOCK_SAMPLES = 1 << 16
"""Samples (all channels) decoded per block from libsndfile."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header."""

    rate: int
    """Samples per second per channel."""
    channels: int
    seconds: float | None
    """Length, when the header says (None for a stream of unknown length)."""
    reader: str
    """soundfile or pyav."""


def _checked(path: Path, info: AudioInfo) -> AudioInfo:
    if not MIN_RATE <= info.rate <= MAX_RATE:
        raise AudioError(
            f"{path} claims a sample rate of {info.rate} Hz; audio files are {MIN_RATE // 1000} to "
            f"{MAX_RATE // 1000} kHz"
        )
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioError(f"{path} claims {info.channels} channels; at most {MAX_CHANNELS} are read")
    return info


def _soundfile_info(path: Path) -> AudioInfo | None:
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError):
        return None
    seconds = info.frames / info.samplerate if info.samplerate > 0 and info.frames > 0 else None
    return AudioInfo(int(info.samplerate), int(info.channels), seconds, "soundfile")


def _pyav_info(path: Path) -> AudioInfo:
    av = _load_av()
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError(f"{path} has no audio track")
            stream = container.streams.audio[0]
            rate = int(stream.codec_context.sample_rate or stream.rate or 0)
            channels = int(stream.codec_context.channels or 0) or 1  # unknown until decoded: mixed down anyway
            seconds: float | None = None
            if stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration:
                seconds = container.duration / 1_000_000
    except AudioError:
        raise
    except (av.FFmpegError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise AudioError(f"cannot read {path} as audio ({first_line(exc)})") from None
    return AudioInfo(rate, channels, seconds, "pyav")


def _load_av() -> Any:
    try:
        import av
    except ImportError:
        raise AudioError("reading this kind of file needs PyAV: pip install 'edge-assistant[whisper]'") from None
    return av


def probe(path: Path) -> AudioInfo:
    """What the file holds (AudioError when it is not audio, or claims an absurd rate or channel count)."""
    info = _soundfile_info(path) or _pyav_info(path)
    return _checked(path, info)


def blocks(path: Path, info: AudioInfo) -> Iterator[npt.NDArray[np.float32]]:
    """Mono float32 blocks at `info.rate`, in order, until the end of the file (AudioError if it breaks)."""
    if info.reader == "soundfile":
        yield from _soundfile_blocks(path, info)
    else:
        yield from _pyav_blocks(path, info)


def _mono(data: npt.NDArray[Any], axis: int) -> npt.NDArray[np.float32]:
    mono = data.mean(axis=axis, dtype=np.float32) if data.shape[axis] > 1 else data.take(0, axis=axis)
    return np.asarray(mono, dtype=np.float32)


def _soundfile_blocks(path: Path, info: AudioInfo) -> Iterator[npt.NDArray[np.float32]]:
    import soundfile

    frames = max(256, BLOCK_SAMPLES // info.channels)
    try:
        with soundfile.SoundFile(str(path)) as f:
            while True:
                data = f.read(frames, dtype="float32", always_2d=True)
                if not len(data):
                    return
                yield _mono(data, axis=1)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise AudioError(f"cannot read {path} as audio ({first_line(exc)})") from None


def _pyav_blocks(path: Path, info: AudioInfo) -> Iterator[npt.NDArray[np.float32]]:
    av = _load_av()
    done = 0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            # planar float at the stream's own rate and layout: one row per channel, mixed down here
            resampler = av.AudioResampler(format="fltp")
            for packet in container.demux(stream):
                for frame in packet.decode():
                    for converted in resampler.resample(frame):
                        data = converted.to_ndarray()
                        done += data.shape[1]
                        yield _mono(data, axis=0)
            for converted in resampler.resample(None):
                yield _mono(converted.to_ndarray(), axis=0)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise AudioError(f"{path} is damaged after {done / info.rate:.1f} s ({first_line(exc)})") from None
