"""Piper voices (piper-tts, ONNX): natural speech at a real-time factor of about 0.06 on two cores."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError, NotInstalledError
from .speaker import Speech, empty

log = logging.getLogger(__name__)

_PHONEME_BLOCK = re.compile(r"\[\[|\]\]")
"""Piper reads '[[ ... ]]' as raw phonemes; model output must not reach it so."""
_FRAME = 256
"""Samples per vocoder frame of a Piper voice (its phoneme timings come in whole frames)."""


def _sound(phoneme: str) -> bool:
    """A phoneme that is a sound, not a word gap, stress or length mark, punctuation or a sentence marker."""
    return bool(phoneme.strip()) and phoneme not in "ˈˌː^$_.,;:!?"


class PiperSpeaker:
    """A Piper voice: an .onnx model and its .onnx.json config (default: the model path + '.json')."""

    def __init__(
        self,
        model_path: str | Path,
        config_path: str | Path | None = None,
        *,
        name: str | None = None,
        language: str | None = None,
        threads: int = 1,
    ) -> None:
        self.model_path = Path(model_path)
        self.threads = threads
        """ONNX threads, which never spin: the voice speaks while the language model generates, and on a
        small machine spinning threads of both starve each other (generation fell from 122 to 7 tok/s)."""
        self.config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
        stem = self.model_path.name.removesuffix(".onnx")
        self.name = name or stem
        self.language = language or stem.split("_")[0].split("-")[0].lower()
        """From the file name ('en_US-joe-medium' -> 'en') unless given."""
        self._voice: Any = None
        self._aligned: Any = None

    @property
    def rate(self) -> int:
        """Output sample rate (Hz), from the voice config; the voice must be open."""
        return int(self._loaded().config.sample_rate)

    def open(self) -> None:
        """Load the model (about 0.7 s for a medium voice); a no-op when already open."""
        if self._voice is not None:
            return
        try:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError:
            raise NotInstalledError(
                "Piper voices need the piper-tts package: pip install 'edge-assistant[piper]'"
            ) from None
        for path in (self.model_path, self.config_path):
            if not path.is_file():
                raise NotInstalledError(f"{self.name}: {path} is missing; pull the voice again")
        started = time.perf_counter()
        try:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.enable_cpu_mem_arena = False  # the arena keeps the largest sentence's buffers for good
            config = PiperConfig.from_dict(json.loads(self.config_path.read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(
                str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._voice = PiperVoice(config=config, session=session)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFileError(f"{self.config_path} is not a Piper voice config: {exc}") from None
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            if type(exc).__module__.startswith("onnxruntime"):
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelFileError(f"{self.model_path} is not a loadable ONNX voice: {first}") from None
            raise
        log.debug("loaded Piper voice %s in %.2f s", self.name, time.perf_counter() - started)

    def synthesize(self, text: str) -> Speech:
        """All of `text` as one Speech."""
        pieces = list(self.synthesize_stream(text))
        if not pieces:
            return empty(self.rate, text)
        samples = np.concatenate([p.samples for p in pieces]) if len(pieces) > 1 else pieces[0].samples
        return Speech(samples, pieces[0].rate, text)

    def synthesize_stream(self, text: str) -> Iterator[Speech]:
        """One Speech per sentence (Piper's own sentence split, from espeak-ng clause ends), lazily."""
        voice = self._loaded()
        started = time.perf_counter()
        for chunk in voice.synthesize(_PHONEME_BLOCK.sub(" ", text)):
            samples = np.asarray(chunk.audio_int16_array, dtype=np.int16).reshape(-1)
            speech = Speech(samples, int(chunk.sample_rate))
            log.debug("piper %s: %.2f s of audio in %.2f s", self.name, speech.seconds, time.perf_counter() - started)
            yield speech
            started = time.perf_counter()

    def synthesize_split(self, first: str, second: str) -> tuple[Speech, int]:
        """`first` and `second` said as one sentence in one breath, and the sample offset between them (to place a
        pause inside a sentence). Needs the `onnx` package, to read the voice's phoneme timings.

        The offset is one vocoder frame before the word gap the timings give: the next word's first sound starts
        in the voice's audio before its timing says (cut in the gap's middle, "Remind me to call my" kept the
        onset of "sister" and Whisper heard "myself")."""
        from piper import PiperVoice

        if self._aligned is None:
            self._aligned = PiperVoice.load(str(self.model_path), str(self.config_path), include_alignments=True)
        voice = self._aligned
        # the sounds the first part takes (espeak-ng may join short words, so count sounds, not words; stress and
        # length marks change with a word's place in the sentence, so they do not count)
        wanted = sum(len([p for p in sentence if _sound(p)]) for sentence in voice.phonemize(first))
        pieces, cut, at, seen = [], 0, 0, 0
        for chunk in voice.synthesize(_PHONEME_BLOCK.sub(" ", f"{first} {second}"), include_alignments=True):
            for phoneme in chunk.phoneme_alignments or []:
                if _sound(phoneme.phoneme):
                    seen += 1
                elif not cut and seen >= wanted and phoneme.phoneme == " ":
                    cut = max(1, at - _FRAME)
                at += int(phoneme.num_samples)
            pieces.append(np.asarray(chunk.audio_int16_array, dtype=np.int16).reshape(-1))
            at = sum(len(p) for p in pieces)
        samples = np.concatenate(pieces)
        return Speech(samples, self.rate, f"{first} {second}"), cut or len(samples)

    def close(self) -> None:
        self._voice = None
        self._aligned = None

    def __enter__(self) -> PiperSpeaker:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loaded(self) -> Any:
        if self._voice is None:
            self.open()
        return self._voice
