"""Raw PCM as clients send it (any rate, 1-4 byte samples, any channel count) to the 16 kHz mono int16 chunks
the recognizers take, converted as the audio front end converts a microphone or a file."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..audio.chunk import RATE, AudioChunk
from ..audio.sources import Resampler, to_mono_int16
from ..errors import UsageError

MAX_RATE = 384_000
MAX_CHANNELS = 32


@dataclass(frozen=True)
class PcmFormat:
    """Interleaved little-endian integer PCM."""

    rate: int
    """Samples per second per channel (Hz)."""
    width: int
    """Bytes per sample: 1 (unsigned 8-bit), 2, 3 or 4 (signed)."""
    channels: int

    def check(self) -> PcmFormat:
        """The format, or UsageError when it is not one this server converts."""
        if not isinstance(self.rate, int) or not 1000 <= self.rate <= MAX_RATE:
            raise UsageError(f"audio rate {self.rate!r} Hz is not supported (1000 to {MAX_RATE})")
        if self.width not in (1, 2, 3, 4):
            raise UsageError(f"audio sample width {self.width!r} is not supported (1 to 4 bytes)")
        if not isinstance(self.channels, int) or not 1 <= self.channels <= MAX_CHANNELS:
            raise UsageError(f"audio channel count {self.channels!r} is not supported (1 to {MAX_CHANNELS})")
        return self

    @property
    def frame_bytes(self) -> int:
        return self.width * self.channels


def to_int16(data: bytes, width: int) -> npt.NDArray[np.int16]:
    """Little-endian samples of `width` bytes as int16 (the top 16 bits)."""
    if width == 1:
        return ((np.frombuffer(data, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    if width == 2:
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    if width == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        return (raw[:, 1].astype(np.uint16) | (raw[:, 2].astype(np.uint16) << 8)).view(np.int16)
    return (np.frombuffer(data, dtype="<i4") >> 16).astype(np.int16)


@dataclass
class PcmConverter:
    """Streams of PCM bytes in, AudioChunks at 16 kHz mono out, timed from the start of the stream."""

    fmt: PcmFormat
    position: int = 0
    """16 kHz samples produced so far."""
    _pending: bytes = b""
    _resample: Resampler | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.fmt.check()
        self._resample = Resampler(self.fmt.rate)

    @property
    def seconds(self) -> float:
        """Audio converted so far."""
        return self.position / RATE

    def convert(self, data: bytes, last: bool = False) -> AudioChunk | None:
        """The next chunk (None when these bytes complete no sample yet); `last` flushes the resampler."""
        data = self._pending + data
        usable = len(data) - len(data) % self.fmt.frame_bytes
        self._pending = data[usable:]
        samples = to_int16(data[:usable], self.fmt.width)
        frames = samples.reshape(-1, self.fmt.channels)
        mono = to_mono_int16(frames) if self.fmt.channels > 1 else samples
        assert self._resample is not None
        out = self._resample(mono, last=last)
        if not len(out):
            return None
        chunk = AudioChunk(np.ascontiguousarray(out, dtype=np.int16), self.position / RATE)
        self.position += len(out)
        return chunk
