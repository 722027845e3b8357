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
import numpy.typing as npt

from ..errors import ModelFileError, NotInstalledError
from .speaker import Speech, empty
from .vits import FIRST_SECONDS, SplitVoice, decode, load_split

log = logging.getLogger(__name__)

_PHONEME_BLOCK = re.compile(r"\[\[|\]\]")
"""Piper reads '[[ ... ]]' as raw phonemes; model output must not reach it so."""
_FRAME = 256
"""Samples per vocoder frame of a Piper voice (its phoneme timings come in whole frames)."""
_MAX_SAMPLE = 32767.0
TYPICAL_PEAK = 0.6
"""The loudest raw sample a voice is taken to reach until it reaches a louder one (Piper en_US joe medium:
0.33 to 0.65 over 16 sentences). Speech is scaled by 1 / the loudest so far: a sentence streamed in pieces cannot
be scaled by its own peak (as Piper does) before it is all made, and one gain keeps the sentences equally loud."""


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
        parts: str | Path | None = None,
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
        self.parts = Path(parts) if parts else None
        """Where the voice's graph split at its decoder is kept (`vits.load_split`; made on first use): each
        sentence is then decoded in pieces, the first ready much sooner. None, or a graph that cannot be split:
        the voice runs whole."""
        self._voice: Any = None
        self._aligned: Any = None
        self._halves: tuple[SplitVoice, Any] | None = None
        """The split voice and its decoder's session (the encoder's is the voice's own session)."""
        self._peak = TYPICAL_PEAK
        self.first_seconds = FIRST_SECONDS
        """Audio in the first decoded piece of a sentence (`tts/vits.py`)."""

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
            halves = load_split(self.model_path, self.parts) if self.parts else None
            session = onnxruntime.InferenceSession(
                str(halves.encoder if halves else self.model_path),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
            if halves is not None:
                decoder = onnxruntime.InferenceSession(
                    str(halves.decoder), sess_options=options, providers=["CPUExecutionProvider"]
                )
                self._halves = (halves, decoder)
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
        """The speech of `text` in order, each piece as soon as it is made, lazily: sentence by sentence (Piper's
        own sentence split, from espeak-ng clause ends), and a sentence in pieces when the voice is split."""
        voice = self._loaded()
        rate = self.rate
        for phonemes in voice.phonemize(_PHONEME_BLOCK.sub(" ", text)):
            if not phonemes:
                continue
            started = time.perf_counter()
            for audio in self.raw_audio(voice.phonemes_to_ids(phonemes)):
                speech = Speech(self._scaled(audio), rate)
                took = time.perf_counter() - started
                log.debug("piper %s: %.2f s of audio in %.3f s", self.name, speech.seconds, took)
                yield speech
                started = time.perf_counter()

    def raw_audio(
        self, phoneme_ids: list[int], scales: tuple[float, float, float] | None = None
    ) -> Iterator[npt.NDArray[np.float32]]:
        """The voice's own float audio of one sentence's phoneme ids, unscaled: in pieces when the voice is split,
        else whole. `scales`: (noise, length, noise width), by default the voice's."""
        voice = self._loaded()
        config = voice.config
        noise, length, width = scales or (config.noise_scale, config.length_scale, config.noise_w_scale)
        args: dict[str, Any] = {
            "input": np.array([phoneme_ids], dtype=np.int64),
            "input_lengths": np.array([len(phoneme_ids)], dtype=np.int64),
            "scales": np.array([noise, length, width], dtype=np.float32),
        }
        if config.num_speakers > 1:
            args["sid"] = np.array([config.default_speaker_id or 0], dtype=np.int64)
        if self._halves is None:
            yield np.asarray(voice.session.run(None, args)[0], dtype=np.float32).reshape(-1)
            return
        halves, decoder = self._halves
        latent = voice.session.run([halves.latent], args)[0]
        shared = {name: args[name] for name in halves.shared}
        yield from decode(decoder, halves, latent, shared, self.rate, self.first_seconds)

    def _scaled(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
        """16-bit samples of raw audio, scaled by 1 / the loudest raw sample the voice has made so far."""
        if len(audio):
            self._peak = max(self._peak, float(np.max(np.abs(audio))))
        scaled = np.clip(audio * (_MAX_SAMPLE / self._peak), -_MAX_SAMPLE, _MAX_SAMPLE)
        return np.asarray(scaled, dtype=np.int16)

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
        self._halves = None

    def __enter__(self) -> PiperSpeaker:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loaded(self) -> Any:
        if self._voice is None:
            self.open()
        return self._voice
