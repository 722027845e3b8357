"""`edge-assistant transcribe`: speech in, notes out."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError
from ..files import check_outputs
from ..modes.events import Noted, Notice, Partial, Progress, Summarized
from ..modes.parts import listening
from ..modes.transcribe import Transcriber
from ..notes import FORMATS, NoteWriter, format_for
from ..settings import ListenSettings, LlmSettings, WindowSettings
from .common import App, backend, emit_json, json_option, listen_options, llm_options, pass_app, status
from .live import GracefulStop, LiveDisplay
from .progress import AudioBar


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
@click.option(
    "--resume",
    is_flag=True,
    help="Go on with an interrupted run: continue the notes file's last session after its last record.",
)
@click.option(
    "--window",
    type=click.FloatRange(10, 3600),
    default=WindowSettings.length,
    show_default=True,
    help="Seconds of a recording transcribed at a time (longer: faster; shorter: less memory).",
)
@click.option("--summary", is_flag=True, help="Afterwards, bullet-point notes from the language model (Markdown).")
@click.option("-q", "--quiet", is_flag=True, help="No status lines or progress bar on stderr (errors only).")
@json_option
@llm_options
@pass_app
def transcribe(
    app: App,
    /,
    listen: ListenSettings,
    output: Path | None,
    fmt: str | None,
    overwrite: bool,
    resume: bool,
    window: float,
    summary: bool,
    quiet: bool,
    as_json: bool,
    llm: LlmSettings,
) -> None:
    """Take notes: speech to text with timestamps, each utterance saved the moment it is recognised.

    A recording (any common audio or video format) is read in blocks and transcribed in long windows, with a
    progress bar on a terminal; the microphone or a pipe is cut into utterances as they are spoken."""
    if resume and overwrite:
        raise UsageError("--resume continues a notes file and --overwrite replaces it: choose one")
    if resume and output is None:
        raise UsageError("--resume needs the notes file of the interrupted run (-o FILE)")
    if resume and listen.input_spec in (None, "-"):
        raise UsageError("--resume needs the recording as a file (--input FILE)")
    check_outputs([("notes", output)], [listen.input_path])
    say = (lambda message: None) if quiet or as_json else status
    recognizer, source = listening(app.store, app.machine, listen, say)
    notes: list[dict[str, Any]] = []
    screen = Screen()
    writer = NoteWriter(
        output,
        format_for(output, fmt),
        overwrite=overwrite,
        resume=resume,
        source=source.name,
        echo=(lambda text: None) if as_json else screen.echo,
    )
    summarizer = backend(app, llm) if summary else None
    display = LiveDisplay(echo_finals=output is not None and not quiet and not as_json)
    mode = Transcriber(recognizer, writer, summarizer, WindowSettings(length=window))
    show_bar = not source.live and not quiet and not as_json and sys.stderr.isatty()
    interrupted = False
    pieces = 0
    summary_path: Path | None = None
    with GracefulStop(source) as stop, mode:
        if mode.stats.resumed_at:
            say(f"resuming after {mode.stats.resumed_at:.1f} s (the last record in {output})")
        say(
            f"transcribing {source.name} with {recognizer.engine} ({recognizer.name})"
            f"{' -> ' + str(output) if output else ''}; Ctrl-C to stop"
        )
        bar = screen.bar = AudioBar(source.duration) if show_bar else None
        try:
            for event in mode.run(source):
                if isinstance(event, Progress):
                    if bar is not None:
                        bar.advance(event.done)
                elif isinstance(event, Partial):
                    if source.live and not quiet and not as_json:
                        display.partial(event.utterance)
                elif isinstance(event, Noted):
                    if as_json and output is None:  # the notes go in the result
                        notes.append(_as_dict(event))
                    if not quiet and not as_json:
                        with screen.above():
                            display.final(event.utterance)
                elif isinstance(event, Notice):
                    with screen.above():
                        say(event.text)
                elif isinstance(event, Summarized):
                    pieces, summary_path = event.pieces, event.path
                    if event.pieces > 1:
                        say(f"summarised in {event.pieces} pieces, then the summaries together")
                    if event.path is not None:
                        say(f"summary -> {event.path}")
            if bar is not None and bar.total and not stop.requested:
                bar.advance(bar.total)  # the header's length may differ from the decoded one by a frame
        except KeyboardInterrupt:
            interrupted = True
        finally:
            screen.bar = None
            if bar is not None:
                bar.close()
    stats = mode.stats
    stopped = stop.requested or interrupted
    if as_json:
        emit_json(
            {
                "input": source.name,
                "output": str(output) if output else None,
                "format": writer.fmt,
                "audio_seconds": round(stats.seconds, 3),
                "utterances": stats.utterances,
                "words": stats.words,
                "resumed_at": round(stats.resumed_at, 3),
                "stopped": stopped,
                "summary": {"path": str(summary_path) if summary_path else None, "pieces": pieces} if summary else None,
                "notes": notes if output is None else None,
            }
        )
    else:
        where = f" -> {output}" if output else ""
        say(
            f"transcribed {stats.seconds:.1f} s of audio: {stats.utterances} utterances, {stats.words} words"
            f"{where}{' (stopped)' if stopped else ''}"
        )
    if stop.exit_code is not None:
        click.get_current_context().exit(stop.exit_code)


class Screen:
    """Notes on stdout and lines on stderr written above the progress bar, which is redrawn after them."""

    bar: AudioBar | None = None

    def above(self) -> Any:
        return self.bar.external_write_mode() if self.bar is not None else nullcontext()

    def echo(self, text: str) -> None:
        with self.above():
            click.echo(text, nl=False)


def _as_dict(event: Noted) -> dict[str, Any]:
    u = event.utterance
    return {
        "start": round(u.start, 3),
        "end": round(u.end, 3),
        "text": u.text,
        "words": [
            {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3), "confidence": round(w.confidence, 3)}
            for w in u.words
        ],
    }
