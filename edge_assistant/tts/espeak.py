"""espeak-ng voices: the Debian binary, robotic but tiny, fast and in ~130 languages (ja, fr, de, en, ...)."""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import time
import wave
from collections.abc import Iterator
from functools import lru_cache

import numpy as np

from ..errors import AudioError, NotInstalledError, UsageError
from ..text import split_sentences
from .speaker import Speech, empty

log = logging.getLogger(__name__)

RATE = 22050
"""What espeak-ng writes (Hz)."""
TIMEOUT = 60.0
"""Seconds one synthesis may take before it counts as hung."""
_OTHER = re.compile(r"\(([^\s()]+) \d+\)")


def espeak_binary() -> str:
    """Path of the espeak-ng program, or NotInstalledError."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise NotInstalledError("espeak-ng is not installed: apt install espeak-ng")
    return path


def parse_voices(listing: str) -> frozenset[str]:
    """Language tags in `espeak-ng --voices` output: the Language column and the '(tag priority)' extras."""
    tags: set[str] = set()
    for line in listing.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            tags.add(parts[1].lower())
            tags.update(t.lower() for t in _OTHER.findall(line))
    return frozenset(tags)


@lru_cache(maxsize=4)
def _languages(binary: str) -> frozenset[str]:
    try:
        out = subprocess.run([binary, "--voices"], capture_output=True, text=True, timeout=TIMEOUT, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise AudioError(f"cannot list the espeak-ng voices: {exc}") from None
    return parse_voices(out.stdout)


def espeak_languages() -> frozenset[str]:
    """Language tags espeak-ng speaks here ('en', 'en-us', 'fr', 'ja', 'zh', ...)."""
    return _languages(espeak_binary())


def espeak_language(language: str) -> str | None:
    """The espeak-ng tag for a language ('pt_BR' -> 'pt-br', 'de-AT' -> 'de'), or None if it has none."""
    tag = language.strip().lower().replace("_", "-")
    known = espeak_languages()
    for candidate in (tag, tag.split("-")[0]):
        if candidate in known:
            return candidate
    return None


class EspeakSpeaker:
    """Speech from the espeak-ng program, one process per synthesis (a few ms each)."""

    def __init__(self, language: str, voice: str | None = None, rate_wpm: int | None = None) -> None:
        self.language = language
        self.voice = voice
        """An espeak-ng voice name ('en-us+f3', 'mb-jp1'); default: the language's own voice."""
        self.rate_wpm = rate_wpm
        """Speaking rate in words per minute (espeak-ng's default is 175)."""
        self.name = f"espeak-ng:{voice or language}"
        self._binary: str | None = None
        self._tag = language

    @property
    def rate(self) -> int:
        return RATE

    def open(self) -> None:
        """Find the program and check the language; a no-op when already open."""
        if self._binary is not None:
            return
        binary = espeak_binary()
        if self.rate_wpm is not None and not 80 <= self.rate_wpm <= 500:
            raise UsageError(f"speaking rate {self.rate_wpm} is out of range; use 80 to 500 words per minute")
        if self.voice is None:
            tag = espeak_language(self.language)
            if tag is None:
                raise UsageError(f"espeak-ng cannot speak '{self.language}' (see: espeak-ng --voices)")
            self._tag = tag
        self._binary = binary

    def synthesize(self, text: str) -> Speech:
        """All of `text` as one Speech. The text goes through stdin, so no part of it is read as an option."""
        if self._binary is None:
            self.open()
        assert self._binary is not None
        if not text.strip():
            return empty(RATE, text)
        command = [self._binary, "-v", self.voice or self._tag, "-b", "1", "--stdout", "--stdin"]
        if self.rate_wpm is not None:
            command += ["-s", str(self.rate_wpm)]
        started = time.perf_counter()
        try:
            done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AudioError(f"espeak-ng took over {TIMEOUT:.0f} s to speak {len(text)} characters") from None
        except OSError as exc:
            raise AudioError(f"cannot run espeak-ng: {exc}") from None
        error = done.stderr.decode("utf-8", "replace").strip()
        if done.returncode != 0 or not done.stdout:
            if "voice does not exist" in error:
                raise UsageError(f"espeak-ng has no voice '{self.voice or self._tag}' (see: espeak-ng --voices)")
            raise AudioError(f"espeak-ng failed: {error.splitlines()[0] if error else f'exit {done.returncode}'}")
        speech = _read_wav(done.stdout, text)
        log.debug("espeak-ng: %.2f s of audio in %.3f s", speech.seconds, time.perf_counter() - started)
        return speech

    def synthesize_stream(self, text: str) -> Iterator[Speech]:
        """One Speech per sentence."""
        for sentence in split_sentences(text):
            yield self.synthesize(sentence)

    def close(self) -> None:
        self._binary = None

    def __enter__(self) -> EspeakSpeaker:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_wav(data: bytes, text: str) -> Speech:
    """Parse the WAV espeak-ng streams to stdout; its header gives a placeholder length, so trust the bytes."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
            frames = wav.readframes(min(wav.getnframes(), len(data) // max(1, width * channels)))
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"espeak-ng wrote no readable WAV: {exc}") from None
    if width != 2:
        raise AudioError(f"espeak-ng wrote {8 * width}-bit audio; expected 16-bit")
    usable = len(frames) - len(frames) % (2 * channels)
    samples = np.frombuffer(frames[:usable], dtype="<i2").reshape(-1, channels)
    mono = samples[:, 0] if channels == 1 else samples.mean(axis=1)
    return Speech(np.ascontiguousarray(mono, dtype=np.int16), rate, text)
