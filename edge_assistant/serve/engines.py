"""The models both faces share: one language model, recognizers by language and voices by name, each loaded
once (the defaults at start, others on first use) and each behind its own lane."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import numpy as np

from ..audio.chunk import RATE
from ..hardware import Machine
from ..languages import NAMES, language
from ..llm.backend import Backend
from ..llm.options import Message
from ..memory import give_back
from ..modes.parts import backend_for, recognizer_for, speaker_for
from ..settings import SYSTEM, ListenSettings, LlmSettings, ServeSettings
from ..store import Store
from ..stt.recognizer import Recognizer
from ..stt.select import choose_stt
from ..stt.whisper import WhisperRecognizer
from ..tts.piper import PiperSpeaker
from ..tts.select import ESPEAK
from ..tts.speaker import Speaker
from ..tts.vits import SERVED_FIRST_SECONDS
from .lanes import Lane

log = logging.getLogger(__name__)
P = TypeVar("P")
Notify = Callable[[str], None]


@dataclass(frozen=True)
class Slot(Generic[P]):
    """A loaded part and the lane its requests queue in."""

    part: P
    lane: Lane


@dataclass(frozen=True)
class Offer:
    """A model or voice this server can use, for `describe` and `/v1/models`."""

    id: str
    kind: str
    """llm, stt or tts."""
    engine: str
    languages: tuple[str, ...]
    description: str = ""


def spoken_language(text: str | None) -> str | None:
    """A request's language ('en-US', 'English', 'fr') as an ISO code; None for none (UsageError if unknown)."""
    return language(text).code if text and text.strip() else None


@dataclass
class Engines:
    """Built from settings (nothing loaded); `open` loads the defaults, `close` frees everything."""

    store: Store
    machine: Machine
    listen: ListenSettings
    llm: LlmSettings
    serve: ServeSettings
    voice: str | None = None
    """The default voice (None: the best installed for the language of --language)."""
    system: str = SYSTEM
    verbose: bool = False
    backend: Backend | None = None
    recognizers: dict[tuple[str, str | None], Slot[Recognizer]] = field(default_factory=dict)
    speakers: dict[str, Slot[Speaker]] = field(default_factory=dict)
    llm_lane: Lane | None = None
    _voice_names: dict[tuple[str | None, str | None], str] = field(default_factory=dict)
    """(voice asked for, language) -> the loaded voice it chose: a request does not search the models dir again."""
    _loading: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle -----------------------------------------------------------------------------------
    def open(self, notify: Notify = lambda message: None) -> None:
        """Load the language model, the default recognizer and the default voice (blocking)."""
        backend = backend_for(self.store, self.machine, self.llm, verbose=self.verbose)
        notify(f"loading {backend.name} ...")
        backend.open()
        self.backend = backend
        backend.warm(self.system_prefix())
        give_back()  # each load's passing buffers, before the next load adds its own to the peak
        self.llm_lane = Lane(backend.name, self.serve.queue)
        recognizer = self._load_recognizer(self.listen.language_code, None)
        notify(f"speech recognition: {recognizer.part.name}")
        speaker = self._load_speaker(self.voice, self.listen.language_code)
        notify(f"voice: {speaker.part.name}")

    def close(self) -> None:
        for slot in self.recognizers.values():
            slot.part.close()
        for voice in self.speakers.values():
            voice.part.close()
        self.recognizers.clear()
        self.speakers.clear()
        if self.backend is not None:
            self.backend.close()

    def system_prefix(self) -> list[Message]:
        return [Message("system", self.system)] if self.system else []

    # -- parts ---------------------------------------------------------------------------------------
    @property
    def chat(self) -> Slot[Backend]:
        if self.backend is None or self.llm_lane is None:
            raise RuntimeError("engines are not open")
        return Slot(self.backend, self.llm_lane)

    async def recognizer(self, language_name: str | None = None, model: str | None = None) -> Slot[Recognizer]:
        """The recognizer for a language (ISO code or name) or a model id, loaded on first use."""
        code = spoken_language(language_name) or self.listen.language_code
        key, _ = self._choose(code, model)
        slot = self.recognizers.get(key)
        if slot is not None:
            return slot
        return await asyncio.to_thread(self._load_recognizer, code, model)

    async def speaker(self, voice: str | None = None, language_name: str | None = None) -> Slot[Speaker]:
        """The voice asked for (an id, or the best installed for a language), loaded on first use."""
        code = spoken_language(language_name)
        if voice is None and code is None:
            voice, code = self.voice, self.listen.language_code
        chosen = self._voice_names.get((voice, code))
        if chosen is None:
            chosen = speaker_for(self.store, self.machine, voice, code).name
        slot = self.speakers.get(chosen)
        if slot is None:
            slot = await asyncio.to_thread(self._load_speaker, voice, code)
        self._voice_names[(voice, code)] = slot.part.name
        return slot

    def _choose(self, code: str | None, model: str | None) -> tuple[tuple[str, str | None], str]:
        """(cache key, model to build) for a language and model: one recognizer per model folder, and per
        language only where the model takes one (multilingual whisper)."""
        path, engine, name = choose_stt(self.store, self.listen.engine, model or self.listen.stt_model, code)
        english_only = name.endswith(".en") or path.name.endswith(".en")
        ref = name if name in self.store.catalog.assets else str(path)
        return (str(path), code if engine == "whisper" and not english_only else None), ref

    def _load_recognizer(self, code: str | None, model: str | None) -> Slot[Recognizer]:
        with self._loading:
            key, ref = self._choose(code, model)
            if key in self.recognizers:
                return self.recognizers[key]
            wanted = replace(self.listen, language=code, stt_model=ref)
            recognizer = recognizer_for(self.store, self.machine, wanted)
            if isinstance(recognizer, WhisperRecognizer):
                recognizer.word_timestamps = False  # whole utterances; words only when a request asks for them
            recognizer.open()
            if isinstance(recognizer, WhisperRecognizer):
                recognizer.transcribe(np.zeros(RATE // 2, dtype=np.int16))  # the first run sets up the kernels
            give_back()
            slot = Slot(recognizer, Lane(recognizer.name, self.serve.queue))
            self.recognizers[key] = slot
            log.info("recognizer %s ready (%s)", recognizer.name, key[1] or "its language")
            return slot

    def _load_speaker(self, voice: str | None, code: str | None) -> Slot[Speaker]:
        with self._loading:
            speaker = speaker_for(self.store, self.machine, voice, code)
            if speaker.name in self.speakers:
                return self.speakers[speaker.name]
            if isinstance(speaker, PiperSpeaker):
                speaker.first_seconds = SERVED_FIRST_SECONDS  # no echo canceller listens to a client's audio
            speaker.open()
            speaker.synthesize("Ready.")  # the first synthesis sets up the voice's kernels
            give_back()
            slot = Slot(speaker, Lane(speaker.name, self.serve.queue))
            self.speakers[speaker.name] = slot
            log.info("voice %s ready", speaker.name)
            return slot

    # -- what is on offer ----------------------------------------------------------------------------
    def offers(self) -> list[Offer]:
        """The language model first, then the installed speech models and voices."""
        out: list[Offer] = []
        if self.backend is not None:
            out.append(Offer(self.backend.name, "llm", "llama.cpp", tuple(NAMES), "language model"))
        for item in self.store.installed("stt"):
            asset = self.store.catalog.assets.get(item.id)
            if asset is None or asset.kind != "stt":
                continue
            langs = tuple(NAMES) if asset.language == "multi" else (asset.language,)
            out.append(Offer(item.id, "stt", asset.engine, langs, asset.name))
        for item in self.store.installed("tts"):
            asset = self.store.catalog.assets.get(item.id)
            if asset is None or asset.kind != "tts" or asset.engine == "espeak":
                continue
            out.append(Offer(item.id, "tts", asset.engine, (asset.language,), asset.name))
        if shutil.which("espeak-ng"):
            from ..tts.espeak import espeak_languages

            out.append(Offer(ESPEAK, "tts", "espeak", tuple(sorted(espeak_languages())), "espeak-ng"))
        return out
