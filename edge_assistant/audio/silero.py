"""Silero's voice activity detector, frame by frame as audio arrives: the model faster-whisper ships (and runs
over whole recordings), here with its state carried from one 32 ms frame to the next.

Energy tells speech from silence, not from steady noise: in pink noise 5 dB below the speech the energy
endpointer heard no gap between questions 3 s apart (`bench --only noise`). The detector was trained to tell
voice from noise.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..errors import NotInstalledError

FRAME_SAMPLES = 512
"""Samples (16 kHz) the model judges at a time: 32 ms."""
CONTEXT = 64
"""Samples of the frame before that the model sees with each frame."""


class SileroFrames:
    """`probability(frame)`: the chance a 512-sample frame (int16, 16 kHz) is voice, given those before it."""

    def __init__(self) -> None:
        try:
            from faster_whisper.vad import get_vad_model
        except ImportError:
            raise NotInstalledError(
                "the silero detector comes with faster-whisper: pip install 'edge-assistant[whisper]'"
            ) from None
        self._session = get_vad_model().session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probability(self, frame: npt.NDArray[np.int16]) -> float:
        audio = frame.astype(np.float32) / 32768.0
        batch = np.concatenate([self._context, audio])[None, :]
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = audio[-CONTEXT:]
        return float(np.asarray(out).reshape(-1)[0])
