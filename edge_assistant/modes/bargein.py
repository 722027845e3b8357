"""Barge-in by voice: a person speaking over the assistant stops it.

With the sound server's echo cancellation on (`audio/echo.py`), the microphone no longer carries the
assistant's own voice, so speech heard there while it speaks is somebody else: after `min_speech` of it (Silero
VAD, `audio/vad.py`), the answer stops. The detector listens on its own thread to chunks handed over as
they are captured, and only while the assistant's voice may be heard; the words themselves reach the
recognizer as usual, so the new question is answered next.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from ..audio.chunk import RATE, AudioChunk
from ..audio.vad import WINDOW, SileroStream
from ..settings import EndpointSettings
from ..tts.delivery import Mouth

log = logging.getLogger(__name__)


class VoiceOver:
    """Calls `on_barge(onset)` when speech is heard over the assistant's voice (onset: its perf_counter time)."""

    def __init__(
        self,
        mouth: Mouth,
        on_barge: Callable[[float], None],
        min_speech: float = 0.18,
        threshold: float = 0.6,
        min_level: float = EndpointSettings.min_level,
    ) -> None:
        self.mouth = mouth
        self.on_barge = on_barge
        self.min_speech = min_speech
        """Seconds of continuous speech that make a barge-in (coughs and clicks are shorter): six windows of
        the detector (192 ms); a seventh put the median stop at 300 ms."""
        self.threshold = threshold
        self.min_level = min_level
        """RMS (of 32768) a window must reach as well: what the echo canceller leaves of the assistant's own voice
        is far quieter than a person at the microphone."""
        self.barged = 0
        """Barge-ins heard so far."""
        self._chunks: queue.Queue[AudioChunk | None] = queue.Queue(maxsize=200)
        self._thread: threading.Thread | None = None
        self._vad = SileroStream()

    def open(self) -> None:
        self._vad.open()
        self._thread = threading.Thread(target=self._listen, name="barge-in", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._chunks.put(None)
            self._thread.join(timeout=2)
            self._thread = None

    def feed(self, chunk: AudioChunk) -> None:
        """A captured chunk (called on the capture thread: it only queues)."""
        with contextlib.suppress(queue.Full):  # the detector fell behind; the next chunks will do
            self._chunks.put_nowait(chunk)

    def _listen(self) -> None:
        pending = np.zeros(0, dtype=np.int16)
        run = 0.0
        onset = 0.0
        while (chunk := self._chunks.get()) is not None:
            if not self.mouth.speaking.is_set():
                if run or len(pending):
                    pending, run = np.zeros(0, dtype=np.int16), 0.0
                    self._vad.reset()
                continue
            pending = np.concatenate([pending, chunk.samples])
            end = chunk.captured or time.perf_counter()
            while len(pending) >= WINDOW:
                window, pending = pending[:WINDOW], pending[WINDOW:]
                at = end - len(pending) / RATE  # capture time of the window's last sample
                loud = float(np.sqrt(np.mean(window.astype(np.float32) ** 2))) >= self.min_level
                if self._vad(window) >= self.threshold and loud:
                    if run == 0:
                        onset = at - WINDOW / RATE
                    run += WINDOW / RATE
                else:
                    run = 0.0
                if run >= self.min_speech and self.mouth.speaking.is_set():
                    self.barged += 1
                    log.info("barge-in: %.0f ms of speech over the answer", run * 1000)
                    self.on_barge(onset)
                    run = 0.0
