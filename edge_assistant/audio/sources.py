"""Where audio comes from: an audio file, raw 16 kHz s16le on stdin, or a microphone.

Every source yields AudioChunks of 16 kHz mono int16, whatever it reads (files at any rate, stereo,
devices that only offer 44.1/48 kHz are converted).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import AudioError, UsageError, first_line
from .chunk import RATE, AudioChunk
from .decode import AudioInfo, blocks, probe
from .devices import find_device, load_sounddevice, supported_rates

log = logging.getLogger(__name__)
CHUNK_SECONDS = 0.05
MIC_BLOCK = 0.02
"""Seconds per microphone block: a sound server holds about two blocks before handing them over (0.1 s at
50 ms blocks, 0.04 s at 20 ms, measured through PulseAudio), so short blocks let the end of speech be heard
sooner."""
BACKLOG = 30.0
"""Seconds of captured audio that may wait for a busy consumer (e.g. while an answer is spoken)."""


class AudioSource(Protocol):
    """Yields 16 kHz mono int16 chunks until the audio ends (or forever, for a microphone)."""

    @property
    def name(self) -> str: ...

    @property
    def live(self) -> bool:
        """True when audio arrives as it is spoken (utterances are endpointed and filed as they end); False for
        a recording read as fast as it decodes (long windows)."""
        ...

    @property
    def duration(self) -> float | None:
        """Seconds of audio when known beforehand (a file), else None."""
        ...

    def check(self) -> None:
        """Fail now, with a clear message, if the source cannot deliver (missing file, no microphone)."""
        ...

    def chunks(self) -> Generator[AudioChunk, None, None]: ...

    def close(self) -> None: ...


def to_mono_int16(data: npt.NDArray[Any]) -> npt.NDArray[np.int16]:
    """Float (-1..1) or integer samples, mono or (frames, channels), to mono int16."""
    if data.dtype.kind == "f":
        mono = data.mean(axis=1) if data.ndim == 2 else data
        return np.asarray(np.clip(mono * 32767.0, -32768, 32767), dtype=np.int16)
    mono = data.astype(np.int32).mean(axis=1) if data.ndim == 2 else data
    return np.asarray(np.clip(mono, -32768, 32767), dtype=np.int16)


class Resampler:
    """Streaming conversion from `rate` to 16 kHz (soxr), or a pass-through at 16 kHz."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._stream: Any = None
        if rate != RATE:
            import soxr

            self._stream = soxr.ResampleStream(rate, RATE, 1, dtype="int16", quality="HQ")

    def __call__(self, samples: npt.NDArray[np.int16], last: bool = False) -> npt.NDArray[np.int16]:
        if self._stream is None:
            return samples
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(samples, last=last)
        return out


def _chunked(samples: npt.NDArray[np.int16], start: float = 0.0) -> Iterator[AudioChunk]:
    step = int(RATE * CHUNK_SECONDS)
    for i in range(0, len(samples), step):
        yield AudioChunk(samples[i : i + step], start + i / RATE)


@dataclass
class FileSource:
    """An audio file of any common format, rate and channel count, decoded in blocks (memory does not grow
    with its length). `realtime` paces chunks like a live source."""

    path: Path
    realtime: bool = False
    stopped: threading.Event = field(default_factory=threading.Event)
    _info: AudioInfo | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def live(self) -> bool:
        """A file is live only when paced in real time."""
        return self.realtime

    @property
    def duration(self) -> float | None:
        """Seconds of audio, as the header says (None when it does not)."""
        return self.info.seconds

    @property
    def info(self) -> AudioInfo:
        if self._info is None:
            self.check()
        assert self._info is not None
        return self._info

    def check(self) -> None:
        if not self.path.exists():
            raise UsageError(f"no such audio file: {self.path}")
        if self.path.is_dir():
            raise UsageError(f"{self.path} is a folder, not an audio file")
        if self.path.stat().st_size == 0:
            raise AudioError(f"{self.path} is empty")
        self._info = probe(self.path)

    def read(self) -> npt.NDArray[np.int16]:
        """The whole file as 16 kHz mono int16 (for short clips: this holds it all in memory)."""
        chunks = [c.samples for c in self.chunks()]
        if not chunks:
            raise AudioError(f"{self.path} holds no audio samples")
        return np.concatenate(chunks)

    def _samples(self) -> Iterator[npt.NDArray[np.int16]]:
        info = self.info
        resample = Resampler(info.rate)
        for block in blocks(self.path, info):
            out = resample(to_mono_int16(block))
            if len(out):
                yield out
        tail = resample(np.zeros(0, dtype=np.int16), last=True)
        if len(tail):
            yield tail

    def chunks(self) -> Generator[AudioChunk, None, None]:
        began = time.monotonic()
        step = int(RATE * CHUNK_SECONDS)
        pending = np.zeros(0, dtype=np.int16)
        position = 0
        for samples in self._samples():
            pending = np.concatenate([pending, samples]) if len(pending) else samples
            usable = len(pending) - len(pending) % step
            for i in range(0, usable, step):
                if self.stopped.is_set():
                    return
                chunk = AudioChunk(pending[i : i + step], (position + i) / RATE)
                if self.realtime:
                    delay = began + chunk.end - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                yield chunk
            position += usable
            pending = pending[usable:]
        if len(pending) and not self.stopped.is_set():
            yield AudioChunk(pending, position / RATE)

    def close(self) -> None:
        """Stop after the current chunk."""
        self.stopped.set()


@dataclass
class RawSource:
    """Raw 16 kHz mono s16le from a byte stream (stdin by default)."""

    stream: BinaryIO | None = None
    name: str = "stdin"
    stopped: threading.Event = field(default_factory=threading.Event)

    live = True
    """A pipe may be a recorder: utterances are filed as they end."""
    duration = None

    def check(self) -> None:
        pass

    def chunks(self) -> Generator[AudioChunk, None, None]:
        stream = self.stream or sys.stdin.buffer
        step = int(RATE * CHUNK_SECONDS) * 2
        position = 0
        pending = b""
        while not self.stopped.is_set():
            data = stream.read(step - len(pending))
            if not data:
                break
            pending += data
            if len(pending) < step:
                continue
            samples = np.frombuffer(pending, dtype="<i2").astype(np.int16)
            yield AudioChunk(samples, position / RATE)
            position += len(samples)
            pending = b""
        usable = len(pending) - len(pending) % 2
        if usable:
            yield AudioChunk(np.frombuffer(pending[:usable], dtype="<i2").astype(np.int16), position / RATE)

    def close(self) -> None:
        """Stop after the current read."""
        self.stopped.set()


class MicSource:
    """A microphone through sounddevice: opened at a rate it supports, converted to 16 kHz mono.

    Construct cheaply; the stream opens when `chunks()` starts, so the recognizer can be loaded first.
    Overflows (audio the machine could not keep up with) are reported through `on_overflow`.
    """

    live = True
    duration = None

    def __init__(
        self,
        device: str | int | None = None,
        on_overflow: Callable[[str], None] | None = None,
        block_seconds: float = MIC_BLOCK,
    ) -> None:
        self.device_spec = device
        self.on_overflow = on_overflow or (lambda message: log.warning(message))
        self.block_seconds = block_seconds
        self.name = f"microphone {device}" if device is not None else "default microphone"
        self.rate = 0
        self._stop = threading.Event()
        self.overflows = 0
        self.dropped = 0
        """Chunks dropped because the consumer fell more than BACKLOG seconds behind."""
        self.taps: list[Callable[[AudioChunk], None]] = []
        """Called with every chunk as it is captured (on PortAudio's thread: keep them quick)."""

    def check(self) -> None:
        find_device(self.device_spec, "input")

    def _pick_rate(self, sd: Any, device: int | None) -> int:
        rates = supported_rates(device)
        if RATE in rates:
            return RATE
        default = int(sd.query_devices(device, "input")["default_samplerate"])
        if rates:
            return default if default in rates else rates[0]
        return default

    def chunks(self) -> Generator[AudioChunk, None, None]:
        """16 kHz chunks stamped with their capture time. A consumer that falls behind finds up to BACKLOG
        seconds waiting; beyond that the oldest audio is dropped (and that is said once)."""
        sd = load_sounddevice()
        device = find_device(self.device_spec, "input")
        self.rate = self._pick_rate(sd, device)
        resample = Resampler(self.rate)
        backlog: queue.Queue[AudioChunk] = queue.Queue(maxsize=max(1, int(BACKLOG / self.block_seconds)))
        position = 0

        def callback(indata: npt.NDArray[np.int16], frames: int, when: Any, status: Any) -> None:
            nonlocal position
            now = time.perf_counter()
            if status.input_overflow:
                self.overflows += 1
                self.on_overflow("audio input overflow: some audio was lost (the machine is too busy)")
            samples = resample(indata[:, 0].copy())
            if not len(samples):
                return
            waited = float(when.currentTime - when.inputBufferAdcTime) if when.inputBufferAdcTime else -1.0
            captured = now - waited + frames / self.rate if 0 <= waited < 1 else now
            chunk = AudioChunk(samples, position / RATE, captured)
            position += len(samples)
            for tap in self.taps:
                tap(chunk)
            self._keep(backlog, chunk)

        try:
            stream = sd.InputStream(
                device=device,
                channels=1,
                samplerate=self.rate,
                dtype="int16",
                blocksize=int(self.rate * self.block_seconds),
                callback=callback,
            )
        except Exception as exc:  # PortAudio errors
            raise AudioError(f"cannot open the microphone at {self.rate} Hz: {first_line(exc)}") from None
        with stream:
            log.info("recording from %s at %d Hz", stream.device, self.rate)
            while not self._stop.is_set():
                try:
                    yield backlog.get(timeout=1.0)
                except queue.Empty:
                    if not stream.active:
                        raise AudioError("the microphone stopped delivering audio") from None

    def _keep(self, backlog: queue.Queue[AudioChunk], chunk: AudioChunk) -> None:
        """Queue a chunk for the consumer, dropping the oldest when the backlog is full."""
        while True:
            try:
                backlog.put_nowait(chunk)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    backlog.get_nowait()
                if not self.dropped:
                    self.on_overflow(
                        f"more than {BACKLOG:.0f} s of audio waiting (the machine is too busy): dropping the oldest"
                    )
                self.dropped += 1

    def close(self) -> None:
        self._stop.set()


def open_source(
    spec: str | None,
    device: str | int | None = None,
    realtime: bool = False,
    on_overflow: Callable[[str], None] | None = None,
) -> AudioSource:
    """--input FILE | - (raw stdin) | None (the microphone, --device)."""
    if spec == "-":
        return RawSource()
    if spec:
        return FileSource(Path(spec).expanduser(), realtime=realtime)
    return MicSource(device, on_overflow=on_overflow)
