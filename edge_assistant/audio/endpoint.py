"""Endpointing: where speech starts and where an utterance ends (trailing silence, or a length cap).

An energy detector with an adaptive noise floor and hysteresis: cheap, no model, and good on clean
speech; the recognizers decide what the words are.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..errors import NotInstalledError
from ..settings import EndpointSettings
from .chunk import RATE, AudioChunk

if TYPE_CHECKING:
    from .vad import SileroStream

FRAME = 0.03
"""Seconds per decision frame."""
NOISE_SPAN = 3.0
NOISY = 300.0
"""auto: RMS (of 32768) that the quietest frame of the last NOISE_SPAN seconds exceeds in a noisy room. Speech
has gaps between words and phrases that fall to the room's own level; in pink noise or a fan's 5 dB below the
speech no frame does (about 2500), and loudness hears one turn for questions 3 s apart (`bench --only noise`)."""
QUIETER = 0.7
"""... and the share of it below which the room is quiet again."""
ROOM_SECONDS = 0.5
"""auto: seconds at the start in which the room is judged; Silero decides meanwhile (loudness would take a noisy
room's first moments for speech)."""


@dataclass(frozen=True)
class Boundary:
    """An utterance starts or ends at `time` (seconds from the stream start)."""

    kind: str
    """start, pause (short silence: maybe the end), end (trailing silence) or cut (max length reached)."""
    time: float


class Endpointer:
    """Feed chunks; get start/end boundaries as they are decided."""

    def __init__(self, settings: EndpointSettings | None = None) -> None:
        self.settings = settings or EndpointSettings()
        self._silero: SileroStream | None = None
        self.frame = FRAME
        """Seconds per decision frame."""
        if self.settings.detector in ("silero", "auto"):
            from .vad import WINDOW, SileroStream

            self._silero = SileroStream()
            try:
                self._silero.open()
            except NotInstalledError:
                if self.settings.detector == "silero":
                    raise
                self._silero = None  # auto without faster-whisper: loudness alone
            self.frame = WINDOW / RATE
        self.noisy = self._silero is not None
        """Loudness cannot tell voice here: Silero decides (always with the silero detector; with auto, while
        the quietest moment of the last NOISE_SPAN seconds is louder than NOISY)."""
        self._levels: deque[float] = deque(maxlen=round(NOISE_SPAN / self.frame))
        self.floor = 0.0
        self.in_speech = False
        self.speech_start = 0.0
        self.last_voice = 0.0
        self._run = 0.0
        self._run_start = 0.0
        self._paused = False
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_start = 0.0
        self.now = 0.0
        """Stream time up to which audio has been judged."""

    def _is_voice(self, rms: float) -> bool:
        voice = rms > max(self.settings.min_level, self.floor * self.settings.floor_ratio)
        if not voice:
            # follow the noise floor: quickly down, slowly up
            rate = 0.3 if rms < self.floor or self.floor == 0 else 0.02
            self.floor += (rms - self.floor) * rate
        return voice

    def feed(self, chunk: AudioChunk) -> list[Boundary]:
        samples = np.concatenate([self._pending, chunk.samples]) if len(self._pending) else chunk.samples
        start = self._pending_start if len(self._pending) else chunk.start
        step = round(RATE * self.frame)
        usable = len(samples) - len(samples) % step
        self._pending, self._pending_start = samples[usable:], start + usable / RATE
        out: list[Boundary] = []
        for i in range(0, usable, step):
            out += self._frame(self._voiced(samples[i : i + step]), start + i / RATE)
        return out

    @property
    def lag(self) -> float:
        """Seconds the detector goes on hearing voice after it ends: the voice ended about this long before
        `last_voice` (what words are measured against; the silence is still counted from `last_voice`). Silero's
        last voiced frame ends 39 ms after the last loud sample (median over 132 ends of Piper speech;
        loudness: -3 ms)."""
        return self.frame if self.noisy else 0.0

    def _voiced(self, frame: npt.NDArray[np.int16]) -> bool:
        x = frame.astype(np.float32)
        rms = float(np.sqrt(np.mean(x * x)))
        if self.settings.detector == "auto" and self._silero is not None:
            self._follow_noise(rms)
        if self.noisy and self._silero is not None:
            threshold = self.settings.stay if self.in_speech else self.settings.enter
            return self._silero(frame) > threshold
        return self._is_voice(rms)

    def _follow_noise(self, rms: float) -> None:
        """auto: hand the decision to Silero while the room is noisy, back to loudness once it is quiet (Silero
        decides for the first ROOM_SECONDS, while the room is judged)."""
        self._levels.append(rms)
        if len(self._levels) * self.frame < ROOM_SECONDS:
            return
        quietest = min(self._levels)
        noisy = quietest > (NOISY * QUIETER if self.noisy else NOISY)
        if noisy and not self.noisy and self._silero is not None:
            self._silero.reset()
        self.noisy = noisy

    @property
    def silence(self) -> float:
        """Seconds of silence since the last voice of the utterance in progress (0 outside one)."""
        return max(0.0, self.now - self.last_voice) if self.in_speech else 0.0

    def end_now(self) -> Boundary:
        """End the utterance in progress at its last voice (the turn is over before the trailing silence)."""
        self.in_speech, self._run = False, 0.0
        return Boundary("end", self.last_voice)

    def _frame(self, voice: bool, t0: float) -> list[Boundary]:
        s = self.settings
        t1 = t0 + self.frame
        self.now = t1
        if not self.in_speech:
            if voice:
                if self._run == 0:
                    self._run_start = t0
                self._run += self.frame
                if self._run >= s.min_speech:
                    self.in_speech, self.speech_start, self.last_voice = True, self._run_start, t1
                    return [Boundary("start", self._run_start)]
            else:
                self._run = 0.0
            return []
        if voice:
            self.last_voice = t1
            self._paused = False
        if t1 - self.last_voice >= s.trailing_silence:
            self.in_speech, self._run = False, 0.0
            return [Boundary("end", self.last_voice)]
        if t1 - self.speech_start >= s.max_utterance:
            self.speech_start = t1
            return [Boundary("cut", t1)]
        if not self._paused and 0 < s.pause < s.trailing_silence and t1 - self.last_voice >= s.pause:
            self._paused = True
            return [Boundary("pause", self.last_voice)]
        return []

    def finish(self) -> list[Boundary]:
        """The stream ended: close an open utterance."""
        if self.in_speech:
            self.in_speech = False
            return [Boundary("end", self.last_voice)]
        return []
