"""`edge-assistant assistant`: speak, get an answer, hear it."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from ..audio.echo import EchoCancel
from ..errors import UsageError
from ..files import check_outputs
from ..modes.assistant import Assistant
from ..modes.events import Answered, AnswerText, Asked, Event, Heard, Notice, Partial
from ..modes.keys import EnterKeys
from ..modes.parts import listening, mouth_for
from ..settings import SYSTEM, VOICE_SILENCE, AssistantSettings, ListenSettings, LlmSettings, SpeakSettings
from ..tts.delivery import WavSink
from .common import App, backend, listen_options, llm_options, pass_app, speak_options, status
from .live import LiveDisplay


@click.command()
@listen_options(silence=VOICE_SILENCE)
@click.option("--wake-word", metavar="PHRASE", help="Listen hands-free and answer what follows PHRASE (vosk).")
@speak_options
@click.option("--system", default=SYSTEM, show_default=True, help="System prompt.")
@click.option("--log", "log_path", type=click.Path(path_type=Path), help="Append every turn to this JSONL file.")
@click.option("--turns", type=click.IntRange(1), help="Stop after this many answers.")
@click.option(
    "--echo-cancel",
    is_flag=True,
    envvar="EDGE_ASSISTANT_ECHO_CANCEL",
    help="Have PulseAudio/PipeWire remove the assistant's voice from the microphone, so you can interrupt it by "
    "speaking.",
)
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
    echo_cancel: bool,
    llm: LlmSettings,
) -> None:
    """Ask by voice, hear the answer. In a terminal: press Enter, speak, and it answers; Enter again stops it.

    With --wake-word it listens hands-free; with --input FILE it answers what the file asks and exits.
    """
    live = listen.input_spec is None
    settings = AssistantSettings(
        system=system,
        wake_word=wake_word,
        push_to_talk=live and not wake_word and sys.stdin.isatty(),
        turns=turns,
        log=log_path,
        echo_cancel=echo_cancel and live,
    )
    # Enter stops an answer (and starts listening, push-to-talk), unless stdin carries the audio or nobody types
    keys = EnterKeys() if live or (listen.input_spec != "-" and not sys.stdin.isatty()) else None
    if wake_word and listen.engine == "whisper":
        raise UsageError("--wake-word needs a streaming engine: use --engine vosk with a vosk model")
    check_outputs([("spoken answers", speak.speak_to), ("the turn log", log_path)], [listen.input_path])
    with EchoCancel() if settings.echo_cancel else contextlib.nullcontext():
        _converse(app, listen, speak, settings, keys, llm)


def _converse(
    app: App,
    listen: ListenSettings,
    speak: SpeakSettings,
    settings: AssistantSettings,
    keys: EnterKeys | None,
    llm: LlmSettings,
) -> None:
    live = listen.input_spec is None
    recognizer, source = listening(app.store, app.machine, listen, status, fast=True)
    mouth = mouth_for(app.store, app.machine, speak, listen.language, app.paths.home / "answers.wav", status)
    mode = Assistant(recognizer, backend(app, llm), mouth, settings, live=live, keys=keys)
    display = LiveDisplay(echo_finals=False)
    with mode:
        for event in mode.run(source):
            show(event, display)
    if not live:
        status("live assistant: edge-assistant assistant (press Enter and speak)" if listen.input_spec != "-" else "")
    if isinstance(mouth.sink, WavSink) and mouth.sink.pieces:
        status(f"spoken answers -> {mouth.sink.path}")


def show(event: Event, display: LiveDisplay) -> None:
    """Partial words on the status line; the question and the streamed answer on stdout."""
    if isinstance(event, Partial):
        display.partial(event.utterance)
    elif isinstance(event, Heard):
        display.final(event.utterance)
    elif isinstance(event, Notice):
        status(event.text)
    elif isinstance(event, Asked):
        click.echo(f"> {event.text}")
    elif isinstance(event, AnswerText):
        click.echo(event.text, nl=False)
    elif isinstance(event, Answered):
        if event.turn.dropped:
            status(f"(ignored: {event.turn.dropped})")
        else:
            click.echo("\n" + ("[stopped]" if event.turn.interrupted else ""))
