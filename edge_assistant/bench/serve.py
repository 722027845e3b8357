"""Serving over the Wyoming protocol, side by side with the services Home Assistant users run today
(`wyoming-faster-whisper` and `wyoming-piper`) on the same machine and models: time from the end of the audio
to the transcript, time from a text to its first audio chunk, word error rate, and memory.

Each clip is streamed in real time (as a satellite's microphone sends it) and ends with a short silence, where
a voice activity detector ends the stream; the services take turns clip by clip, so the noise of a shared
machine hits both.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio.chunk import RATE
from ..errors import EdgeError
from ..tts.speaker import Speaker
from .notes import wer

CLIPS = [
    ["What is the capital of France?"],
    ["Turn off the lights in the kitchen and lock the front door."],
    ["Please remind me to call my sister tomorrow evening.", "And add milk to the shopping list."],
    [
        "The meeting was moved to Thursday because the manager is away.",
        "Send the notes to everyone in the team before Friday.",
    ],
    [
        "Good morning everyone, thanks for joining the weekly planning meeting.",
        "First, the new release is ready for testing and the notes are in the shared folder.",
        "Second, we need two more volunteers for the support rotation next month.",
    ],
]
"""Spoken clips of about 2 to 12 seconds (sentences joined with short pauses)."""
SPEAK = ["The kitchen light is on.", "Your timer is done.", "It is twenty degrees outside and sunny."]
"""Short replies, as a voice assistant says them."""
GAP = 0.4
"""Seconds of silence between the sentences of a clip."""
TAIL = 0.5
"""Seconds of silence after the speech of a clip, before the stream ends (a VAD's end of speech)."""
CHUNK = 1024
"""Samples per audio chunk (what Home Assistant's satellites send)."""
READY_TIMEOUT = 300.0


@dataclass(frozen=True)
class Service:
    """A Wyoming service to measure: its name, the command that runs it, and which jobs it does."""

    name: str
    commands: tuple[tuple[str, ...], ...]
    """One command per process (ours: one; the peers: one for speech to text, one for text to speech)."""
    asr_port: int
    tts_port: int


@dataclass
class Figures:
    """What one service measured."""

    name: str
    transcript_s: list[float] = field(default_factory=list)
    """End of audio -> transcript, per clip."""
    first_audio_s: list[float] = field(default_factory=list)
    """Text -> first audio chunk, per reply."""
    wer: float = 0.0
    memory_bytes: int = 0
    """Peak resident memory, summed over the service's processes."""
    processes: int = 1

    def summary(self) -> dict[str, Any]:
        t = sorted(self.transcript_s)
        return {
            "name": self.name,
            "transcript_mean_s": statistics.fmean(t) if t else 0.0,
            "transcript_p95_s": t[min(len(t) - 1, round(0.95 * (len(t) - 1)))] if t else 0.0,
            "first_audio_median_s": statistics.median(self.first_audio_s) if self.first_audio_s else 0.0,
            "wer": self.wer,
            "memory_mib": self.memory_bytes / 2**20,
            "processes": self.processes,
            **asdict(self),
        }


def make_clips(cache: Path, speaker: Speaker) -> list[tuple[str, npt.NDArray[np.int16]]]:
    """(reference text, 16 kHz samples) of each clip, spoken by `speaker`, made once and cached."""
    import soundfile

    from ..audio.sources import FileSource
    from ..tts.output import resample

    out = []
    cache.mkdir(parents=True, exist_ok=True)
    for n, sentences in enumerate(CLIPS):
        path = cache / f"serve-clip-{n}-{speaker.name}.wav"
        if not path.exists():
            speaker.open()
            pieces = [np.zeros(int(RATE * 0.3), dtype=np.int16)]
            for sentence in sentences:
                speech = speaker.synthesize(sentence)
                pieces += [resample(speech.samples, speech.rate, RATE), np.zeros(int(RATE * GAP), dtype=np.int16)]
            pieces[-1] = np.zeros(int(RATE * TAIL), dtype=np.int16)
            tmp = path.with_suffix(".tmp.wav")
            soundfile.write(str(tmp), np.concatenate(pieces), RATE, subtype="PCM_16")
            tmp.replace(path)
        out.append((" ".join(sentences), FileSource(path).read()))
    return out


# -- one Wyoming exchange each ----------------------------------------------------------------------------
async def _transcribe(port: int, samples: npt.NDArray[np.int16]) -> tuple[str, float]:
    """Stream the clip in real time; (transcript, seconds from audio-stop to the transcript)."""
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    async with AsyncTcpClient("127.0.0.1", port, connect_timeout=30, read_timeout=120) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        began = time.perf_counter()
        for i in range(0, len(samples), CHUNK):
            piece = samples[i : i + CHUNK]
            await client.write_event(AudioChunk(rate=RATE, width=2, channels=1, audio=piece.tobytes()).event())
            delay = began + (i + len(piece)) / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await client.write_event(AudioStop().event())
        stopped = time.perf_counter()
        while True:
            event = await client.read_event()
            if event is None:
                raise EdgeError("the service closed the connection before the transcript")
            if event.type == "error":
                raise EdgeError(f"the service failed: {event.data.get('text')}")
            if Transcript.is_type(event.type):
                return Transcript.from_event(event).text, time.perf_counter() - stopped


async def _first_audio(port: int, text: str) -> float:
    """Seconds from sending the text to the first audio chunk; the rest of the audio is read and dropped."""
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize

    async with AsyncTcpClient("127.0.0.1", port, connect_timeout=30, read_timeout=120) as client:
        started = time.perf_counter()
        await client.write_event(Synthesize(text=text).event())
        first = 0.0
        while True:
            event = await client.read_event()
            if event is None or event.type == "error":
                raise EdgeError(f"the service failed to speak: {event.data if event else 'closed'}")
            if event.type == "audio-chunk" and not first:
                first = time.perf_counter() - started
            if event.type == "audio-stop":
                return first


async def _answer(port: int, text: str) -> str:
    from wyoming.asr import Transcript
    from wyoming.client import AsyncTcpClient
    from wyoming.handle import Handled

    async with AsyncTcpClient("127.0.0.1", port, connect_timeout=30, read_timeout=120) as client:
        await client.write_event(Transcript(text=text).event())
        while True:
            event = await client.read_event()
            if event is None or event.type == "error":
                raise EdgeError("the service failed to answer")
            if Handled.is_type(event.type):
                return Handled.from_event(event).text or ""


# -- processes ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss(pid: int) -> int:
    """Peak resident memory of a running process (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT) -> None:
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info

    async def describe() -> bool:
        try:
            async with AsyncTcpClient("127.0.0.1", port, connect_timeout=2, read_timeout=30) as client:
                await client.write_event(Describe().event())
                event = await client.read_event()
                return event is not None and Info.is_type(event.type)
        except OSError:
            return False

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EdgeError(f"the service for port {port} exited while starting (exit {proc.returncode})")
        if asyncio.run(describe()):
            return
        time.sleep(0.5)
    raise EdgeError(f"a service on port {port} did not start within {timeout:.0f} s")


@dataclass
class Running:
    service: Service
    procs: list[subprocess.Popen[bytes]]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    @property
    def memory(self) -> int:
        return sum(peak_rss(p.pid) for p in self.procs)


def start(service: Service, env: dict[str, str]) -> Running:
    procs = [
        subprocess.Popen(list(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command in service.commands
    ]
    running = Running(service, procs)
    try:
        ports = [service.asr_port] if service.asr_port == service.tts_port else [service.asr_port, service.tts_port]
        for port, proc in zip(ports, procs, strict=True):
            _wait_ready(port, proc)
    except BaseException:
        running.stop()
        raise
    return running


def ours(home: Path) -> Service:
    port = free_port()
    command = (sys.executable, "-m", "edge_assistant", "serve", "--wyoming", f"tcp://127.0.0.1:{port}")
    return Service("edge-assistant serve (asr + tts + handle)", (command,), port, port)


def peers(whisper_model: Path, voice: Path, threads: int, data: Path) -> Service | None:
    """wyoming-faster-whisper and wyoming-piper on the same models, or None when they are not installed."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("wyoming_faster_whisper", "wyoming_piper")):
        return None
    asr, tts = free_port(), free_port()
    data.mkdir(parents=True, exist_ok=True)
    whisper = (
        sys.executable, "-m", "wyoming_faster_whisper", "--uri", f"tcp://127.0.0.1:{asr}", "--model",
        str(whisper_model), "--data-dir", str(data), "--download-dir", str(data), "--beam-size", "5",
        "--cpu-threads", str(threads), "--compute-type", "int8", "--language", "en", "--local-files-only",
    )  # fmt: skip
    piper = (
        sys.executable, "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{tts}", "--voice", str(voice),
        "--data-dir", str(data), "--download-dir", str(data),
    )  # fmt: skip
    return Service("wyoming-faster-whisper + wyoming-piper", (whisper, piper), asr, tts)


def measure_serve(
    services: Sequence[Service],
    clips: Sequence[tuple[str, npt.NDArray[np.int16]]],
    home: Path,
    rounds: int = 2,
    notify: Callable[[str], None] = lambda message: None,
) -> list[Figures]:
    """Start every service, warm each up, then take turns clip by clip and reply by reply."""
    env = dict(os.environ, EDGE_ASSISTANT_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    running = []
    try:
        for service in services:
            notify(f"starting {service.name} ...")
            running.append(start(service, env))
        figures = [Figures(r.service.name, processes=len(r.procs)) for r in running]
        for r in running:  # first requests load lazily in some services: not timed
            asyncio.run(_transcribe(r.service.asr_port, clips[0][1][: RATE // 2]))
            asyncio.run(_first_audio(r.service.tts_port, "Ready."))
        errors: dict[str, list[float]] = {f.name: [] for f in figures}
        for n in range(rounds):
            for i, (reference, samples) in enumerate(clips):
                order = list(zip(running, figures, strict=True))
                if (n + i) % 2:
                    order.reverse()
                for r, f in order:
                    text, seconds = asyncio.run(_transcribe(r.service.asr_port, samples))
                    f.transcript_s.append(seconds)
                    errors[f.name].append(wer(reference, text))
            for i, text in enumerate(SPEAK):
                order = list(zip(running, figures, strict=True))
                if (n + i) % 2:
                    order.reverse()
                for r, f in order:
                    f.first_audio_s.append(asyncio.run(_first_audio(r.service.tts_port, text)))
        for r, f in zip(running, figures, strict=True):
            if r.service.asr_port == r.service.tts_port:  # ours answers too: its memory counts the language model
                asyncio.run(_answer(r.service.asr_port, "What is the capital of France?"))
            f.memory_bytes = r.memory
            f.wer = statistics.fmean(errors[f.name]) if errors[f.name] else 0.0
        return figures
    finally:
        for r in running:
            r.stop()
