"""The parts a mode is wired from, built from settings: where audio comes from, who recognises it, which
language model answers, which voice speaks and where to. Every face (command line, server) builds them here;
none of them is opened yet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..audio.sources import AudioSource, open_source
from ..hardware import Machine
from ..llm.backend import Backend
from ..llm.select import make_backend
from ..settings import ListenSettings, LlmSettings, SpeakSettings
from ..store import Store
from ..stt.recognizer import Recognizer
from ..stt.select import make_recognizer
from ..tts.delivery import Mouth, NullSink
from ..tts.select import make_sink, make_speaker
from ..tts.speaker import Speaker

Notify = Callable[[str], None]


def recognizer_for(store: Store, machine: Machine, listen: ListenSettings, fast: bool = False) -> Recognizer:
    """The recognizer the options ask for. `fast`: least delay after speech (conversation) rather than word
    timings and beam search (notes)."""
    return make_recognizer(
        store,
        listen.engine,
        listen.stt_model,
        listen.language_code,
        listen.endpoint(),
        threads=machine.physical_cores,
        fast=fast,
    )


def source_for(listen: ListenSettings, notify: Notify, realtime: bool = False) -> AudioSource:
    """--input FILE | - | the microphone, checked now so a missing file or microphone fails before any load."""
    source = open_source(listen.input_spec, listen.device, realtime=realtime, on_overflow=notify)
    source.check()
    return source


def listening(
    store: Store, machine: Machine, listen: ListenSettings, notify: Notify, fast: bool = False
) -> tuple[Recognizer, AudioSource]:
    return recognizer_for(store, machine, listen, fast), source_for(listen, notify)


def mouth_for(
    store: Store, machine: Machine, speak: SpeakSettings, language: str | None, fallback: Path, notify: Notify
) -> Mouth:
    """The voice and where it goes (a speaker, a WAV file, or nowhere with --no-speak)."""
    sink = make_sink(speak, fallback, notify)
    speaker = None if isinstance(sink, NullSink) else make_speaker(store, speak.voice, language, machine.physical_cores)
    return Mouth(speaker, sink)


def speaker_for(store: Store, machine: Machine, voice: str | None, language: str | None) -> Speaker:
    """The voice the options ask for (an explicit voice, else the best installed one for the language)."""
    return make_speaker(store, voice, language, machine.physical_cores)


def backend_for(store: Store, machine: Machine, llm: LlmSettings, verbose: bool = False) -> Backend:
    """The language model the options ask for (checked against the machine's memory, not loaded)."""
    return make_backend(store, machine, llm, verbose=verbose)
