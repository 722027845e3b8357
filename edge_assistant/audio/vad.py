"""Silero voice activity detection, streamed: the model faster-whisper ships, fed 32 ms windows one at a time.

faster-whisper runs Silero over whole recordings; a live microphone needs its state carried from window to
window, which is what this does with the same ONNX model. Energy tells speech from silence, not from steady
noise: in pink noise 5 dB below the speech the energy endpointer heard no gap between questions 3 s apart
(`bench --only noise`); the endpointer can use this instead (`EndpointSettings.detector`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import NotInstalledError

WINDOW = 512
"""Samples per decision at 16 kHz (32 ms)."""
CONTEXT = 64
"""Samples of the previous window the model sees before each one."""


class SileroStream:
    """Speech probability of each successive 32 ms window of 16 kHz audio."""

    def __init__(self) -> None:
        self._session: Any = None
        self.reset()

    def open(self) -> None:
        if self._session is None:
            try:
                from faster_whisper.vad import get_vad_model
            except ImportError:
                raise NotInstalledError(
                    "the silero detector comes with faster-whisper: pip install 'edge-assistant[whisper]'"
                ) from None
            self._session = get_vad_model().session

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def __call__(self, window: npt.NDArray[np.int16]) -> float:
        """The probability that this window of WINDOW samples holds speech."""
        self.open()
        audio = window.astype(np.float32) / 32768.0
        batch = np.concatenate([self._context, audio])[None, :]
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = audio[-CONTEXT:]
        return float(np.asarray(out).reshape(-1)[0])
