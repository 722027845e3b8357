"""Where speech goes: the sound card (stoppable within a block) or a 16-bit mono WAV file."""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import threading
import wave
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


def play(speech: Speech, device: int | str | None = None, stop: threading.Event | None = None) -> bool:
    """Play speech and return when it has been heard; True if it ran to the end, False if `stop` cut it short.

    A set `stop` event silences it within about one block (20 ms) plus the device latency.
    """
    if not len(speech.samples) or (stop is not None and stop.is_set()):
        return stop is None or not stop.is_set()
    sd = _sounddevice()
    device, info = _device(sd, device)
    rate, channels = _settings(sd, device, info, speech.rate)
    samples = resample(speech.samples, speech.rate, rate)
    if rate != speech.rate:
        log.debug("device %s takes %d Hz, not %d: resampled", info.get("name"), rate, speech.rate)
    data = samples.reshape(-1, 1) if channels == 1 else np.repeat(samples.reshape(-1, 1), channels, axis=1)
    block = max(1, int(rate * BLOCK_SECONDS))
    try:
        stream = sd.OutputStream(
            samplerate=rate, device=device, channels=channels, dtype="int16", blocksize=block, latency="low"
        )
    except (ValueError, sd.PortAudioError) as exc:
        raise NoOutputDeviceError(
            f"cannot open audio device '{info.get('name', device)}': {first_line(exc)}; {HINT}"
        ) from None
    finished = False
    try:
        stream.start()
        for start in range(0, len(data), block):
            if stop is not None and stop.is_set():
                log.debug("playback stopped at %.2f s", start / rate)
                return False
            stream.write(np.ascontiguousarray(data[start : start + block]))
        stream.stop()  # returns once the buffered tail has played
        finished = True
        return True
    except sd.PortAudioError as exc:
        raise AudioError(f"audio playback failed: {first_line(exc)}") from None
    finally:
        if not finished:
            try:
                stream.abort()
            except Exception as exc:  # the stream may already be broken; closing matters more
                log.debug("abort failed: %s", exc)
        stream.close(ignore_errors=True)
