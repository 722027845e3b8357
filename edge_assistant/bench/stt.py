"""Speech recognition figures: real-time factor on a fixed ~30 s speech file, and how long after the end of
speech the final text arrives (the endpointing wait plus the recognizer's own work after it)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.chunk import RATE, AudioChunk
from ..audio.endpoint import EndpointSettings
from ..audio.sources import FileSource
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
    """Median seconds from handing over the audio that completes an utterance to its final text."""

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
    from ..tts.speaker import make_speaker

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
    """Run the recognizer over the file as fast as it can go, timing the finals."""
    recognizer.open()
    handed: list[float] = [0.0]

    def timed(chunks: Iterable[AudioChunk]) -> Iterator[AudioChunk]:
        for chunk in chunks:
            handed[0] = time.perf_counter()
            yield chunk

    source = FileSource(speech)
    audio_s = len(source.read()) / RATE
    delays = []
    start = time.perf_counter()
    finals = 0
    for utterance in recognizer.stream(timed(source.chunks())):
        if utterance.final:
            finals += 1
            delays.append(time.perf_counter() - handed[0])
    elapsed = time.perf_counter() - start
    return SttFigures(
        recognizer.name,
        recognizer.engine,
        audio_s,
        elapsed / audio_s,
        finals,
        endpoint.trailing_silence,
        statistics.median(delays) if delays else 0.0,
    )
