"""Speech recognition figures: real-time factor on a fixed ~30 s speech file, and how long after the end of
speech the final text arrives (the endpointing wait plus the recognizer's own work after it)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.chunk import RATE
from ..audio.sources import FileSource
from ..settings import EndpointSettings
from ..stt.recognizer import Recognizer

BENCH_SENTENCES = [
    "Good morning everyone, thanks for joining the weekly planning meeting.",
    "First, the new release is ready for testing and the notes are in the shared folder.",
    "Second, we need two more volunteers for the support rotation next month.",
    "The customer in Lyon asked for a demo of the offline translation feature.",
    "Please send your travel plans to the office manager before Friday.",
    "Finally, remember that the kitchen will be closed on Tuesday for repairs.",
]


@dataclass(frozen=True)
class SttFigures:
    model: str
    engine: str
    audio_s: float
    rtf: float
    """Processing seconds per second of audio (lower is faster)."""
    utterances: int
    endpoint_wait_s: float
    """Trailing silence the endpointer waits for before it calls an utterance finished."""
    final_after_endpoint_s: float
    """Median seconds from the end of the endpointing silence to the final text (audio paced in real time)."""

    @property
    def end_of_speech_to_text_s(self) -> float:
        return self.endpoint_wait_s + self.final_after_endpoint_s


def bench_speech(cache: Path) -> Path:
    """A ~30 s WAV of the bench sentences (embedded Piper voice), made once and cached."""
    path = cache / "bench-speech-30s.wav"
    if path.exists():
        return path
    import soundfile

    from ..store import Store
    from ..tts.select import make_speaker

    cache.mkdir(parents=True, exist_ok=True)
    speaker = make_speaker(Store(cache / "none"), None, "en")
    speaker.open()
    pieces = [np.zeros(RATE // 2, dtype=np.int16)]
    for sentence in BENCH_SENTENCES:
        speech = speaker.synthesize(sentence)
        from ..tts.output import resample

        pieces += [resample(speech.samples, speech.rate, RATE), np.zeros(int(RATE * 1.2), dtype=np.int16)]
    speaker.close()
    tmp = path.with_suffix(".tmp.wav")
    soundfile.write(str(tmp), np.concatenate(pieces), RATE, subtype="PCM_16")
    tmp.replace(path)
    return path


def measure_stt(recognizer: Recognizer, speech: Path, endpoint: EndpointSettings) -> SttFigures:
    """Two passes: as fast as it can go (real-time factor), then paced like a microphone (how long after the
    end of speech each final text arrives)."""
    recognizer.open()
    source = FileSource(speech)
    audio_s = len(source.read()) / RATE
    start = time.perf_counter()
    finals = sum(1 for u in recognizer.stream(source.chunks()) if u.final)
    rtf = (time.perf_counter() - start) / audio_s
    began = time.perf_counter()
    delays = [
        time.perf_counter() - began - u.end
        for u in recognizer.stream(FileSource(speech, realtime=True).chunks())
        if u.final
    ]
    after_endpoint = statistics.median(delays) - endpoint.trailing_silence if delays else 0.0
    return SttFigures(
        recognizer.name, recognizer.engine, audio_s, rtf, finals, endpoint.trailing_silence, max(0.0, after_endpoint)
    )
