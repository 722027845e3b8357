"""Listening in noise: the voice bench's questions under steady noise, through the assistant's recognizer and
turn-taking, with each voice detector (loudness over an adaptive floor; Silero's model).

Two noises, each mixed at 5 dB signal-to-noise (the speech's power over its loud spans against the noise's):
pink noise (1/f, like rain or a room's rumble) and a fan (brown noise with a hum at its blade rate). The file
opens with NOISE_ALONE seconds of the noise alone. Counted: phantom utterances (turns taken where nobody spoke),
turns that ran questions together (the noise between them heard as voice), questions heard as more than one turn
(cut) or not at all, and the word error rate of all that was heard on the questions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio.chunk import RATE
from ..audio.sources import FileSource
from ..modes.turntaking import TurnEnd
from ..settings import AssistantSettings
from ..stt.recognizer import Recognizer
from ..tts.speaker import Speaker
from .notes import wer
from .voice import LOUD, QUESTIONS, build_wav

SNR_DB = 5.0
NOISE_ALONE = 20.0
"""Seconds of noise before the first question."""
SEED = 7


@dataclass
class NoiseFigures:
    noise: str
    detector: str
    """What told voice from the rest (`EndpointSettings.detector`)."""
    phantoms: int = 0
    """Turns taken where nobody spoke."""
    questions: int = 0
    run_together: int = 0
    """Turns that took in more than one question (the noise between them was heard as voice)."""
    cut: int = 0
    """Questions heard as more than one turn."""
    missed: int = 0
    wer: float = 0.0
    """Word error rate of all the turns taken on the questions against all the questions."""
    heard: list[str] = field(default_factory=list)
    """The turns taken, in order."""


def as_dict(figures: list[NoiseFigures]) -> list[dict[str, Any]]:
    return [asdict(f) for f in figures]


def pink(samples: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Unit-power noise whose power falls as 1/f."""
    spectrum = np.fft.rfft(rng.normal(size=samples))
    f = np.fft.rfftfreq(samples, 1 / RATE)
    spectrum[1:] /= np.sqrt(f[1:])
    spectrum[0] = 0
    return _unit(np.fft.irfft(spectrum, samples))


def fan(samples: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Unit-power brown noise (1/f²) with a hum at a fan's blade rate and its second harmonic."""
    brown = np.cumsum(rng.normal(size=samples))
    brown -= np.convolve(brown, np.ones(RATE // 10) / (RATE // 10), mode="same")  # no slow drift
    t = np.arange(samples) / RATE
    hum = np.sin(2 * np.pi * 120 * t) + 0.5 * np.sin(2 * np.pi * 240 * t)
    return _unit(_unit(brown) + 0.5 * _unit(hum))


def silence(samples: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """No noise: the reference."""
    return np.zeros(samples)


NOISES = {"no noise": silence, "pink noise": pink, "a fan": fan}


def _unit(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return x / max(float(np.sqrt(np.mean(x * x))), 1e-12)


def noisy_copy(speech: npt.NDArray[np.int16], noise: npt.NDArray[np.float64], snr_db: float) -> npt.NDArray[np.int16]:
    """`speech` with `noise` added so that the speech's loud spans are `snr_db` above the noise."""
    x = speech.astype(np.float64)
    loud = x[np.abs(x) > LOUD]
    power = float(np.mean(loud * loud)) if len(loud) else 1.0
    mixed = x + noise * np.sqrt(power / 10 ** (snr_db / 10))
    return np.asarray(np.clip(np.round(mixed), -32768, 32767), dtype=np.int16)


def measure_noise(recognizer: Recognizer, speaker: Speaker, cache: Path, detector: str) -> list[NoiseFigures]:
    """Each noise through `recognizer`, whose endpointer tells voice by `detector`."""
    import soundfile

    clean = cache / f"voice-questions-{speaker.name}.wav"
    clips = build_wav(speaker, QUESTIONS, clean)
    speech, _ = soundfile.read(clean, dtype="int16")
    lead = np.zeros(int(NOISE_ALONE * RATE), dtype=np.int16)
    samples = np.concatenate([lead, np.asarray(speech, dtype=np.int16)])
    spans = [(c.start + NOISE_ALONE - 0.3, c.end + NOISE_ALONE + 0.3) for c in clips]
    recognizer.turn_end = TurnEnd(AssistantSettings().turn)
    recognizer.open()
    out = []
    for name, make in NOISES.items():
        noise = make(len(samples), np.random.default_rng(SEED))
        wav = cache / f"noise-{name.replace(' ', '-')}-{speaker.name}.wav"
        soundfile.write(wav, noisy_copy(samples, noise, SNR_DB), RATE, subtype="PCM_16")
        heard = [u for u in recognizer.stream(FileSource(wav).chunks()) if u.final and u.text.strip()]
        covers = [[q for q, (a, b) in enumerate(spans) if u.end >= a and u.start <= b] for u in heard]
        figures = NoiseFigures(name, detector, questions=len(clips), heard=[u.text for u in heard])
        figures.phantoms = sum(not c for c in covers)
        figures.run_together = sum(len(c) > 1 for c in covers)
        turns_per_question = [sum(q in c for c in covers) for q in range(len(clips))]
        figures.missed = sum(n == 0 for n in turns_per_question)
        figures.cut = sum(n > 1 for n in turns_per_question)
        said = " ".join(u.text for u, c in zip(heard, covers, strict=True) if c)
        figures.wer = wer(" ".join(c.text for c in clips), said)
        out.append(figures)
    return out
