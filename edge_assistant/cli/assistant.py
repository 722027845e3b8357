"""`edge-assistant assistant`: speak, get an answer, hear it."""

from __future__ import annotations

import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any

import click

from ..audio.sources import AudioSource, find_device, open_source
from ..errors import AudioError, UsageError
from ..modes.assistant import SYSTEM, Assistant, Turn, TurnLog
from ..modes.voice import DeviceSink, Mouth, NullSink, SpeechSink, WavSink
from ..modes.wake import WakeSpotter
from ..settings import ListenSettings, LlmSettings, SpeakSettings
from ..stt.types import Utterance
from ..stt.vosk import VoskRecognizer
from ..tts.speaker import make_speaker
from .audio import LiveDisplay, listen_options, listen_setup
from .common import App, grouped, llm_options, open_backend, pass_app, status


def speech_sink(app: App, speak: SpeakSettings) -> SpeechSink:
    """--speak-to FILE, --no-speak, or the sound card (a WAV file when there is none and --speak was not asked)."""
    if speak.speak_to is not None:
        folder = speak.speak_to.expanduser().absolute().parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # write_wav creates the missing folders below it
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise UsageError(f"cannot write spoken answers to {speak.speak_to}: {folder} is not a writable folder")
        return WavSink(speak.speak_to)
    if speak.speak is False:
        return NullSink()
    try:
        find_device(speak.output_device, "output")
    except AudioError as exc:
        if speak.speak:
            raise
        fallback = app.paths.home / "answers.wav"
        status(f"{exc}: spoken answers go to {fallback}")
        return WavSink(fallback)
    return DeviceSink(speak.output_device)


speak_options = grouped(
    "speak",
    SpeakSettings,
    [
        click.option(
            "--speak/--no-speak",
            default=None,
            help="Speak answers [default: yes, to a speaker, else to a WAV file in the data home].",
        ),
        click.option("--speak-to", type=click.Path(path_type=Path), help="Write spoken answers to this WAV file."),
        click.option(
            "--voice",
            envvar="EDGE_ASSISTANT_VOICE",
            help="Voice id (models list --kind tts), espeak-ng, or a Piper .onnx.",
        ),
        click.option("--output-device", envvar="EDGE_ASSISTANT_OUTPUT_DEVICE", help="Speaker: index or name part."),
    ],
)
"""The options of a command that speaks, as `speak: SpeakSettings`."""


class Keys:
    """Lines typed on stdin (Enter), read on a thread: push-to-talk and barge-in."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.on_line: Any = None
        threading.Thread(target=self._read, name="keys", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            if self.on_line is not None:
                self.on_line()
            self.lines.put(line)
        self.lines.put(None)

    def wait(self) -> bool:
        """Block until Enter; False at end of input."""
        return self.lines.get() is not None


@click.command()
@listen_options(silence=0.5)
@click.option("--wake-word", metavar="PHRASE", help="Listen hands-free and answer what follows PHRASE (vosk).")
@speak_options
@click.option("--system", default=SYSTEM, show_default=True, help="System prompt.")
@click.option("--log", "log_path", type=click.Path(path_type=Path), help="Append every turn to this JSONL file.")
@click.option("--turns", type=click.IntRange(1), help="Stop after this many answers.")
@llm_options
@pass_app
def assistant(
    app: App,
    /,
    listen: ListenSettings,
    wake_word: str | None,
    speak: SpeakSettings,
    system: str,
    log_path: Path | None,
    turns: int | None,
    llm: LlmSettings,
) -> None:
    """Ask by voice, hear the answer. In a terminal: press Enter, speak, and it answers; Enter again stops it.

    With --wake-word it listens hands-free; with --input FILE it answers what the file asks and exits.
    """
    if wake_word and listen.engine == "whisper":
        raise UsageError("--wake-word needs a streaming engine: use --engine vosk with a vosk model")
    recognizer, source = listen_setup(app, listen, fast=True)
    if wake_word and not isinstance(recognizer, VoskRecognizer):
        raise UsageError(
            "--wake-word needs the vosk engine: install a vosk model for your language "
            "(edge-assistant models list --kind stt) and pass --engine vosk"
        )
    sink = speech_sink(app, speak)
    speaker = (
        None
        if isinstance(sink, NullSink)
        else make_speaker(app.store, speak.voice, listen.language, app.machine.physical_cores)
    )
    backend = open_backend(app, llm)
    display = LiveDisplay(echo_finals=False)
    helper = Assistant(
        recognizer,
        backend,
        Mouth(speaker, sink),
        system=system,
        log=TurnLog(log_path),
        on_text=lambda piece: click.echo(piece, nl=False),
        notify=status,
        wake_word=wake_word,
        on_transcript=lambda u: None if u.final else display.partial(u),
        live=listen.input_spec is None,
    )
    try:
        helper.open()
        if wake_word and isinstance(recognizer, VoskRecognizer):
            helper.spotter = WakeSpotter(recognizer.model, wake_word)
        _run(helper, source, listen, turns, display)
    finally:
        helper.close()
        backend.close()
    if isinstance(sink, WavSink) and sink.pieces:
        status(f"spoken answers -> {sink.path}")


def _respond(helper: Assistant, u: Utterance, display: LiveDisplay, silence: float) -> Turn | None:
    """Answer a final utterance (the part after the wake word, with one); None when nothing was answered."""
    display.final(u)
    text = helper.after_wake_word(u.text)
    if text is None:
        return None
    if not text:
        status("(listening)")
        return None
    click.echo(f"> {text}")
    turn = helper.answer(Utterance(text, u.start, u.end, True, u.words, u.language), endpoint_s=silence)
    if turn.dropped:
        status(f"(ignored: {turn.dropped})")
        return None
    click.echo("\n" + ("[stopped]" if turn.interrupted else ""))
    return turn


def _run(
    helper: Assistant, source: AudioSource, listen: ListenSettings, turns: int | None, display: LiveDisplay
) -> None:
    """Answer until the input ends, `turns` answers are given, or Ctrl-C."""
    input_spec, silence = listen.input_spec, listen.silence
    answered = 0
    if input_spec is not None:
        if input_spec != "-" and not sys.stdin.isatty():
            Keys().on_line = helper.interrupt  # Enter (a line on stdin) stops an answer
        for u in helper.utterances(source.chunks()):
            if _respond(helper, u, display, silence):
                answered += 1
                if turns and answered >= turns:
                    break
        if not answered:
            status("heard no question in the input")
        status("live assistant: edge-assistant assistant (press Enter and speak)" if input_spec != "-" else "")
        return
    keys = Keys()
    keys.on_line = helper.interrupt
    if wake_word_or_handsfree(helper):
        status(
            f"listening{' for ' + repr(helper.wake_word) if helper.wake_word else ''}; Enter stops an answer, "
            "Ctrl-C quits"
        )
        for u in helper.utterances(source.chunks()):
            if _respond(helper, u, display, silence):
                answered += 1
                if turns and answered >= turns:
                    return
        return
    while not turns or answered < turns:
        status("press Enter and speak (Ctrl-C quits)")
        keys.on_line = None
        if not keys.wait():
            return
        keys.on_line = helper.interrupt
        mic = open_source(None, getattr(source, "device_spec", None), on_overflow=status)
        status("listening ...")
        for u in helper.utterances(mic.chunks()):
            mic.close()
            if _respond(helper, u, display, silence):
                answered += 1
            break


def wake_word_or_handsfree(helper: Assistant) -> bool:
    """Hands-free with a wake word, or when stdin is not a terminal (nobody can press Enter)."""
    return bool(helper.wake_word) or not sys.stdin.isatty()
