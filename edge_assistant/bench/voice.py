"""Voice latency: from the end of a spoken question to the first spoken audio of the answer.

Questions are played in real time (paced like a microphone) through the whole assistant: endpointing,
recognition, the language model and the voice. The answer audio is synthesised but not played.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.chunk import RATE
from ..audio.sources import FileSource
from ..llm.backend import Backend
from ..modes.assistant import Assistant
from ..modes.events import Answered, Heard
from ..modes.turns import Turn
from ..stt.recognizer import Recognizer
from ..tts.delivery import Mouth, WavSink
from ..tts.speaker import Speaker

QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What is the tallest mountain in the world?",
    "Who wrote Romeo and Juliet?",
    "What colour is the sky on a clear day?",
]
PARTS = ("endpoint_s", "stt_s", "ttft_s", "first_sentence_s", "tts_s")


@dataclass(frozen=True)
class VoiceFigures:
    turns: int
    first_audio_s: float
    """Median: end of speech -> first spoken audio ready."""
    worst_s: float
    parts: dict[str, float]
    """Medians of the pieces: endpointing wait, recognition after it, time to first token, first sentence
    (from the request), synthesis of the first sentence."""
    stt: str
    llm: str
    voice: str


def questions_wav(cache: Path, speaker: Speaker) -> Path:
    """The questions spoken by `speaker`, 3 s of silence after each, made once and cached."""
    path = cache / f"bench-questions-{speaker.name}.wav"
    if path.exists():
        return path
    import soundfile

    from ..tts.output import resample

    cache.mkdir(parents=True, exist_ok=True)
    speaker.open()
    pieces = [np.zeros(RATE // 2, dtype=np.int16)]
    for question in QUESTIONS:
        speech = speaker.synthesize(question)
        pieces += [resample(speech.samples, speech.rate, RATE), np.zeros(RATE * 3, dtype=np.int16)]
    tmp = path.with_suffix(".tmp.wav")
    soundfile.write(str(tmp), np.concatenate(pieces), RATE, subtype="PCM_16")
    tmp.replace(path)
    return path


def measure_voice(
    recognizer: Recognizer, backend: Backend, speaker: Speaker, cache: Path, silence: float
) -> VoiceFigures:
    wav = questions_wav(cache, speaker)
    mouth = Mouth(speaker, WavSink(cache / "bench-answers.wav"))
    turns: list[Turn] = []
    with Assistant(recognizer, backend, mouth, live=False, silence=silence) as assistant:
        for event in assistant.hear(FileSource(wav, realtime=True).chunks()):
            if isinstance(event, Heard):
                turns += [e.turn for e in assistant.answer(event.utterance) if isinstance(e, Answered)]
                assistant.conversation.reset()
    answered = [t for t in turns if not t.dropped and t.timings.first_audio_s > 0]
    if not answered:
        return VoiceFigures(0, 0.0, 0.0, {}, recognizer.name, backend.name, speaker.name)
    firsts = [t.timings.first_audio_s for t in answered]
    parts = {p: statistics.median(getattr(t.timings, p) for t in answered) for p in PARTS}
    return VoiceFigures(
        len(answered), statistics.median(firsts), max(firsts), parts, recognizer.name, backend.name, speaker.name
    )


def as_dict(figures: VoiceFigures) -> dict[str, Any]:
    return asdict(figures)
