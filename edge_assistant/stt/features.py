"""Whisper's log-Mel features of a long window, computed a block of frames at a time.

faster-whisper computes the features of all the audio it is given at once: every 25 ms frame windowed, its
spectrum and its power side by side, about 1 MB per second of speech. For a recording's long window (240 s, its
pauses cut out by the VAD) that is some 230 MiB held for a moment, the largest part of the peak memory of
`transcribe`, and the part that depended on how much speech a window held. The same features, frame for frame,
come out of blocks of `BLOCK_FRAMES` frames: the window's features (80 values per 10 ms, 7.7 MB for 240 s)
and one block's work are all that is held.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from faster_whisper.feature_extractor import FeatureExtractor

BLOCK_FRAMES = 1500
"""Frames (10 ms each) per block: 15 s, a few MB of work."""
FLOOR = 8.0
"""Whisper's dynamic range: log10 power more than this below the loudest is raised to it."""


class BlockFeatureExtractor(FeatureExtractor):  # type: ignore[misc]
    """faster-whisper's `FeatureExtractor` (same parameters, same features) in bounded memory."""

    @classmethod
    def like(cls, other: Any) -> BlockFeatureExtractor:
        """One with the parameters of `other` (a model's own extractor)."""
        return cls(
            feature_size=other.mel_filters.shape[0],
            sampling_rate=other.sampling_rate,
            hop_length=other.hop_length,
            chunk_length=other.chunk_length,
            n_fft=other.n_fft,
        )

    def __call__(
        self, waveform: npt.NDArray[Any], padding: int = 160, chunk_length: int | None = None
    ) -> npt.NDArray[np.float32]:
        hop, n_fft = self.hop_length, self.n_fft
        length = len(waveform) + padding
        frames = (length + 2 * (n_fft // 2) - n_fft) // hop  # the library's frames but its last (dropped)
        if frames <= BLOCK_FRAMES or len(waveform) <= n_fft:
            out: npt.NDArray[np.float32] = super().__call__(waveform, padding, chunk_length)
            return out
        if chunk_length is not None:
            self.n_samples = chunk_length * self.sampling_rate
            self.nb_max_frames = self.n_samples // hop
        window = np.hanning(n_fft + 1)[:-1].astype("float32")
        log_spec = np.empty((self.mel_filters.shape[0], frames), dtype=np.float32)
        for first in range(0, frames, BLOCK_FRAMES):
            last = min(frames, first + BLOCK_FRAMES)
            span = padded(waveform, padding, n_fft // 2, first * hop, (last - 1) * hop + n_fft)
            columns = np.lib.stride_tricks.as_strided(
                span, (last - first, n_fft), (hop * span.strides[0], span.strides[0]), writeable=False
            )
            spectrum = np.fft.rfft(columns * window, n=n_fft, axis=-1).astype("complex64").T
            mel = self.mel_filters @ (np.abs(spectrum) ** 2)
            log_spec[:, first:last] = np.log10(np.clip(mel, a_min=1e-10, a_max=None))
        np.maximum(log_spec, log_spec.max() - FLOOR, out=log_spec)
        log_spec += 4.0
        log_spec /= 4.0
        return log_spec


def padded(waveform: npt.NDArray[Any], padding: int, edge: int, start: int, stop: int) -> npt.NDArray[np.float32]:
    """Samples `start:stop` of the waveform as the library pads it (float32, `padding` zeros after it, then
    `edge` samples reflected at both ends), without padding all of it."""
    total = len(waveform) + padding
    if start >= edge and stop - edge <= len(waveform):
        return np.asarray(waveform[start - edge : stop - edge], dtype=np.float32)
    index = np.arange(start - edge, stop - edge)
    index = np.abs(index)  # reflected at the start
    index = np.where(index >= total, 2 * (total - 1) - index, index)  # and at the end
    inside = index < len(waveform)
    out = np.zeros(len(index), dtype=np.float32)
    out[inside] = waveform[index[inside]]
    return out
