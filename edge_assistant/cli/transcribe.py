"""`edge-assistant transcribe`: speech in, notes out."""

from __future__ import annotations

from pathlib import Path

import click

from ..files import check_outputs
from ..modes.events import Noted, Notice, Partial, Summarized
from ..modes.parts import listening
from ..modes.transcribe import Transcriber
from ..notes import FORMATS, NoteWriter, format_for
from ..settings import ListenSettings, LlmSettings
from .common import App, backend, listen_options, llm_options, pass_app, status
from .live import GracefulStop, LiveDisplay


@click.command()
@listen_options()
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Notes file [default: stdout].")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Notes format [default: from the file extension, else txt].",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing notes file instead of appending a session.")
@click.option("--summary", is_flag=True, help="Afterwards, bullet-point notes from the language model (Markdown).")
@llm_options
@pass_app
def transcribe(
    app: App,
    /,
    listen: ListenSettings,
    output: Path | None,
    fmt: str | None,
    overwrite: bool,
    summary: bool,
    llm: LlmSettings,
) -> None:
    """Take notes: speech to text with timestamps, each utterance saved the moment it is recognised."""
    check_outputs([("notes", output)], [listen.input_path])
    recognizer, source = listening(app.store, app.machine, listen, status)
    writer = NoteWriter(
        output,
        format_for(output, fmt),
        overwrite=overwrite,
        source=source.name,
        echo=lambda text: click.echo(text, nl=False),
    )
    summarizer = backend(app, llm) if summary else None
    display = LiveDisplay(echo_finals=output is not None)
    mode = Transcriber(recognizer, writer, summarizer)
    interrupted = False
    with GracefulStop(source) as stop, mode:
        status(
            f"transcribing {source.name} with {recognizer.engine} ({recognizer.name})"
            f"{' -> ' + str(output) if output else ''}; Ctrl-C to stop"
        )
        try:
            for event in mode.run(source):
                if isinstance(event, Partial):
                    display.partial(event.utterance)
                elif isinstance(event, Noted):
                    display.final(event.utterance)
                elif isinstance(event, Notice):
                    status(event.text)
                elif isinstance(event, Summarized) and event.path is not None:
                    status(f"summary -> {event.path}")
        except KeyboardInterrupt:
            interrupted = True
    stats = mode.stats
    where = f" -> {output}" if output else ""
    halted = " (stopped)" if stop.requested or interrupted else ""
    status(
        f"transcribed {stats.seconds:.1f} s of audio: {stats.utterances} utterances, {stats.words} words{where}{halted}"
    )
    if stop.exit_code is not None:
        click.get_current_context().exit(stop.exit_code)
