"""faster-whisper's voice activity detector (Silero) over a long window, a block of frames at a time.

The library runs the detector on up to 10,000 frames of 32 ms at once, so a recording's 240 s window (7,500
frames) costs about 100 MiB of the detector's working memory for a moment. The frames go through the model as
one sequence whose state is handed from one run to the next, so blocks of `BLOCK` frames give the very same
speech probabilities (checked bit for bit) in an eighth of that.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from faster_whisper.vad import SileroVADModel, get_vad_model

BLOCK = 1000
"""Frames (512 samples, 32 ms) per run of the model: 32 s."""


class BlockSileroVAD(SileroVADModel):  # type: ignore[misc]
    """The library's detector (the same model, session and probabilities) run a block of frames at a time."""

    def __call__(
        self, audio: npt.NDArray[np.float32], num_samples: int = 512, context_size_samples: int = 64
    ) -> npt.NDArray[np.float32]:
        assert audio.ndim == 1 and audio.shape[0] % num_samples == 0
        h = np.zeros((1, 1, 128), dtype="float32")
        c = np.zeros((1, 1, 128), dtype="float32")
        frames = audio.reshape(-1, num_samples)
        frames[-1, -context_size_samples:] = 0  # as the library does (its context is a view of the audio)
        edge = frames[:, -context_size_samples:]
        outputs = []
        for first in range(0, len(frames), BLOCK):
            last = min(len(frames), first + BLOCK)
            if first:
                context = edge[first - 1 : last - 1]
            else:  # the first frame's context is the (zeroed) end of the last frame, as the library rolls it
                context = np.concatenate(
                    [frames[-1:, -context_size_samples:], frames[: last - 1, -context_size_samples:]]
                )
            batch = np.concatenate([context, frames[first:last]], 1)
            output, h, c = self.session.run(None, {"input": batch, "h": h, "c": c})
            outputs.append(output)
        out: npt.NDArray[np.float32] = np.concatenate(outputs, axis=0)
        return out


def use_block_vad() -> Any:
    """Make the detector faster-whisper shares across the process (it keeps one) run in blocks; returns it."""
    model = get_vad_model()
    if type(model) is SileroVADModel:
        model.__class__ = BlockSileroVAD
    return model
