"""Where speech goes: the sound card (stoppable within a block) or a 16-bit mono WAV file."""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import threading
import time
import wave
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ..audio.devices import load_sounddevice
from ..errors import AudioError, first_line
from ..files import atomic_write
from .speaker import Speech

log = logging.getLogger(__name__)

HINT = "use --speak-to FILE or --no-speak"
BLOCK_SECONDS = 0.02
"""Playback is written in blocks this long; a stop request takes effect at the next block."""
FALLBACK_RATES = (48000, 44100, 16000)


class NoOutputDeviceError(AudioError):
    """Speech cannot be played: no PortAudio, no output device, or none that takes the audio."""


# -- resampling and joining ---------------------------------------------------------------------
def resample(samples: npt.NDArray[np.int16], rate: int, target: int) -> npt.NDArray[np.int16]:
    """Mono int16 from `rate` to `target` Hz: scipy's polyphase filter when present, else numpy."""
    if rate == target or not len(samples):
        return samples
    signal: Any = None
    with contextlib.suppress(ImportError):
        signal = importlib.import_module("scipy.signal")
    if signal is not None:
        g = math.gcd(rate, target)
        out = np.asarray(signal.resample_poly(samples.astype(np.float32), target // g, rate // g))
    else:
        out = _resample_numpy(samples.astype(np.float32), rate, target)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def _resample_numpy(x: npt.NDArray[np.float32], rate: int, target: int) -> npt.NDArray[np.float64]:
    """Linear interpolation, after a windowed-sinc low-pass when going down (so high tones do not fold back)."""
    if target < rate:
        cutoff = 0.45 * target / rate  # cycles per input sample, a little under the new Nyquist
        n = np.arange(-32, 33)
        taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.blackman(len(n))
        x = np.convolve(x, (taps / taps.sum()).astype(np.float32), mode="same")
    count = max(1, round(len(x) * target / rate))
    return np.asarray(np.interp(np.arange(count) * (rate / target), np.arange(len(x)), x), dtype=np.float64)


def join(pieces: Sequence[Speech], rate: int | None = None) -> Speech:
    """Pieces end to end as one Speech, at `rate` or else the first piece's rate."""
    target = rate or (pieces[0].rate if pieces else 22050)
    parts = [resample(p.samples, p.rate, target) for p in pieces]
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return Speech(samples.astype(np.int16, copy=False), target, " ".join(p.text for p in pieces if p.text))


SILENCE = 300
"""Sample level (of 32768) at or under which a voice's sample counts as silence."""


def is_sound(speech: Speech, level: int = SILENCE) -> bool:
    """Whether any sample is louder than `level`."""
    return bool(len(speech.samples)) and int(np.max(np.abs(speech.samples.astype(np.int32)))) > level


def trim_leading_silence(speech: Speech, keep: float = 0.03, level: int = SILENCE) -> Speech:
    """Speech without the near-silence a voice may put before the first word (`keep` seconds of it stay)."""
    loud = np.flatnonzero(np.abs(speech.samples.astype(np.int32)) > level)
    start = max(0, int(loud[0]) - int(keep * speech.rate)) if len(loud) else 0
    return Speech(speech.samples[start:], speech.rate, speech.text) if start else speech


# -- files -------------------------------------------------------------------------------------
def write_wav(speech: Speech | Sequence[Speech], path: str | os.PathLike[str], rate: int | None = None) -> Path:
    """Write 16-bit mono WAV atomically (readers never see half a file); pieces are joined.

    `rate` resamples (e.g. 16000 for a recognizer); by default the first piece's rate is kept.
    """
    whole = join([speech] if isinstance(speech, Speech) else list(speech), rate)
    target = Path(path)

    def write(f: BinaryIO) -> None:
        with wave.open(f, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(whole.rate)
            wav.writeframes(whole.samples.astype("<i2", copy=False).tobytes())

    try:
        atomic_write(target, write)
    except OSError as exc:
        raise AudioError(f"cannot write {target}: {exc.strerror or exc}") from None
    log.debug("wrote %.2f s of speech to %s", whole.seconds, target)
    return target


# -- the sound card ----------------------------------------------------------------------------
def _sounddevice() -> Any:
    return load_sounddevice(NoOutputDeviceError, HINT)


def _device(sd: Any, device: int | str | None) -> tuple[int | str | None, dict[str, Any]]:
    """The device to open and its description; NoOutputDeviceError when there is none."""
    if isinstance(device, str) and device.strip().isdigit():
        device = int(device)
    try:
        info = dict(sd.query_devices(device, kind="output"))
    except (ValueError, sd.PortAudioError) as exc:
        if device is None:
            raise NoOutputDeviceError(f"no audio output device; {HINT}") from None
        raise NoOutputDeviceError(f"no audio output device '{device}' ({first_line(exc)}); {HINT}") from None
    if int(info.get("max_output_channels", 0)) < 1:
        raise NoOutputDeviceError(f"audio device '{info.get('name', device)}' has no outputs; {HINT}")
    return device, info


def _settings(sd: Any, device: int | str | None, info: dict[str, Any], rate: int) -> tuple[int, int]:
    """(sample rate, channels) the device takes: the voice's rate in mono if it can, else the nearest fit."""
    rates = [rate, int(info.get("default_samplerate") or 0), *FALLBACK_RATES]
    channels = [c for c in (1, 2) if c <= int(info.get("max_output_channels", 1))]
    for ch in channels:
        for r in dict.fromkeys(x for x in rates if x > 0):
            try:
                sd.check_output_settings(device=device, samplerate=r, channels=ch, dtype="int16")
            except (ValueError, sd.PortAudioError):
                continue
            return r, ch
    raise NoOutputDeviceError(f"audio device '{info.get('name', device)}' takes none of the rates {rates}; {HINT}")


class SoundOut:
    """A sound card output kept open for a session.

    PortAudio's callback plays what `play` queues, back to back, and silence when there is nothing: no stream
    is opened per sentence (that cost time before every sentence and dropped the tail of each one when it was
    closed), a stop request silences it at the next block, and the moment each sentence becomes audible is
    known from the stream's clock.
    """

    def __init__(self, device: int | str | None = None) -> None:
        self.device = device
        self.rate = 0
        self.channels = 1
        self.heard_at: float | None = None
        """perf_counter time the first sample of the last piece started reached the speaker."""
        self._stream: Any = None
        self._lock = threading.Condition()
        self._queue: deque[npt.NDArray[np.int16]] = deque()
        self._queued = 0
        """Frames queued and not yet handed to the device."""
        self._starting = False

    def open(self, rate: int) -> None:
        """Open the device at `rate` when it takes it (else the nearest rate it does) and start it."""
        if self._stream is not None:
            return
        sd = _sounddevice()
        device, info = _device(sd, self.device)
        self.rate, self.channels = _settings(sd, device, info, rate)
        try:
            self._stream = sd.OutputStream(
                samplerate=self.rate,
                device=device,
                channels=self.channels,
                dtype="int16",
                blocksize=max(1, int(self.rate * BLOCK_SECONDS)),
                latency="low",
                callback=self._callback,
            )
            self._stream.start()
        except (ValueError, sd.PortAudioError) as exc:
            self._stream = None
            raise NoOutputDeviceError(
                f"cannot open audio device '{info.get('name', device)}': {first_line(exc)}; {HINT}"
            ) from None

    @property
    def latency(self) -> float:
        """Seconds from handing audio to the device to hearing it."""
        return float(self._stream.latency) if self._stream is not None else 0.0

    def play(self, speech: Speech, stop: threading.Event | None = None) -> bool:
        """Queue speech and return once the device has taken all of it; True if it ran to the end, False if
        `stop` cut it short (what was queued is dropped at once)."""
        if not len(speech.samples) or (stop is not None and stop.is_set()):
            return stop is None or not stop.is_set()
        self.open(speech.rate)
        samples = resample(speech.samples, speech.rate, self.rate)
        with self._lock:
            self._queue.append(samples)
            self._queued += len(samples)
            self._starting = True
            while self._queued > 0:
                if stop is not None and stop.is_set():
                    self._flush()
                    return False
                if not self._stream.active:
                    self._flush()
                    raise AudioError("the audio output stopped playing (the sound device went away?)")
                self._lock.wait(BLOCK_SECONDS)
        return True

    def drain(self) -> None:
        """Wait until what the device took has been heard (its output latency)."""
        time.sleep(self.latency)

    def flush(self) -> None:
        """Drop what is queued: silence from the next block on."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        self._queue.clear()
        self._queued = 0
        self._lock.notify_all()

    def _callback(self, outdata: npt.NDArray[np.int16], frames: int, when: Any, status: Any) -> None:
        out = outdata[:, 0] if self.channels == 1 else np.zeros(frames, dtype=np.int16)
        filled = 0
        with self._lock:
            if self._starting and self._queue:
                self._starting = False
                ahead = float(when.outputBufferDacTime - when.currentTime) if when.outputBufferDacTime else 0.0
                self.heard_at = time.perf_counter() + (ahead if 0 < ahead < 1 else self.latency)
            while filled < frames and self._queue:
                head = self._queue[0]
                take = min(frames - filled, len(head))
                out[filled : filled + take] = head[:take]
                filled += take
                if take == len(head):
                    self._queue.popleft()
                else:
                    self._queue[0] = head[take:]
            self._queued -= filled
            self._lock.notify_all()
        out[filled:] = 0
        if self.channels > 1:
            outdata[:] = out.reshape(-1, 1)

    def close(self) -> None:
        """Let the last sound be heard, then close the device."""
        if self._stream is None:
            return
        self.drain()
        try:
            self._stream.stop()
            self._stream.close()
        except Exception as exc:  # closing a broken stream: nothing more to do
            log.debug("closing the output stream failed: %s", exc)
        self._stream = None


def play(speech: Speech, device: int | str | None = None, stop: threading.Event | None = None) -> bool:
    """Play speech and return when it has been heard; True if it ran to the end, False if `stop` cut it short.

    A set `stop` event silences it within about one block (20 ms) plus the device latency.
    """
    if not len(speech.samples) or (stop is not None and stop.is_set()):
        return stop is None or not stop.is_set()
    out = SoundOut(device)
    try:
        return out.play(speech, stop)
    finally:
        out.close()
