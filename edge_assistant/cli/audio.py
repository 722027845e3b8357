"""`edge-assistant devices` and `transcribe`: audio in, notes out."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..audio.endpoint import EndpointSettings
from ..audio.sources import AudioSource, _sounddevice, open_source, supported_rates
from ..errors import AudioError
from ..languages import language as parse_language
from ..modes.transcribe import Transcriber, summarize
from ..notes import NoteWriter, clock, format_for
from ..settings import ListenSettings, LlmSettings
from ..stt.recognizer import Recognizer
from ..stt.select import make_recognizer
from ..stt.types import Utterance
from .common import App, emit_json, grouped, json_option, llm_options, open_backend, pass_app, status


@click.command()
@json_option
@pass_app
def devices(app: App, as_json: bool) -> None:
    """Audio devices: inputs and outputs, the defaults marked, the rates they take."""
    sd = _sounddevice()
    try:
        found = list(sd.query_devices())
        default_in, default_out = sd.default.device
    except Exception as exc:  # PortAudio errors
        raise AudioError(f"cannot list audio devices: {exc}") from None
    rows = []
    for i, d in enumerate(found):
        rows.append(
            {
                "index": i,
                "name": d["name"],
                "inputs": d["max_input_channels"],
                "outputs": d["max_output_channels"],
                "default_rate": d["default_samplerate"],
                "default_input": i == default_in,
                "default_output": i == default_out,
                "input_rates": supported_rates(i, "input") if d["max_input_channels"] else [],
                "output_rates": supported_rates(i, "output") if d["max_output_channels"] else [],
            }
        )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        status("no audio devices found (use --input FILE for speech and --speak-to FILE for replies)")
    for r in rows:
        marks = [m for m, on in (("default input", r["default_input"]), ("default output", r["default_output"])) if on]
        kinds = [f"{r['inputs']} in" if r["inputs"] else "", f"{r['outputs']} out" if r["outputs"] else ""]
        rates = sorted(set(r["input_rates"]) | set(r["output_rates"]))
        click.echo(
            f"{r['index']:3}  {r['name']}  ({', '.join(k for k in kinds if k)}; rates "
            f"{', '.join(map(str, rates)) or '?'}){'  *' + ', '.join(marks) if marks else ''}"
        )


def listen_options(silence: float = 0.6, language: bool = True, max_utterance: bool = True) -> Callable[[Any], Any]:
    """The options of a command that listens, as `listen: ListenSettings`."""
    options = [
        click.option(
            "-i",
            "--input",
            "input_spec",
            metavar="FILE|-",
            help="A WAV/FLAC file, or - for raw 16 kHz s16le on stdin [default: the microphone].",
        ),
        click.option("-d", "--device", envvar="EDGE_ASSISTANT_DEVICE", help="Microphone: index or name part."),
        click.option("--engine", type=click.Choice(["vosk", "whisper"]), help="Speech engine [default: by model]."),
        click.option("--stt-model", envvar="EDGE_ASSISTANT_STT_MODEL", help="Speech model id or folder."),
    ]
    if language:
        options.append(click.option("--language", help="Spoken language (ISO code) [default: English / auto]."))
    options.append(
        click.option(
            "--silence",
            type=click.FloatRange(0.1, 10),
            default=silence,
            show_default=True,
            help="Seconds of silence that end an utterance.",
        )
    )
    if max_utterance:
        options.append(
            click.option(
                "--max-utterance",
                type=click.FloatRange(1, 600),
                default=30.0,
                show_default=True,
                help="Seconds after which an utterance is cut.",
            )
        )
    return grouped("listen", ListenSettings, options)


class GracefulStop:
    """First Ctrl-C: stop listening and finish the utterance in progress; second: stop at once."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> GracefulStop:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        status("\nstopping (Ctrl-C again to quit at once) ...")
        self.source.close()

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)


class LiveDisplay:
    """Partial text on an overwritten stderr line; finals as lines (when notes go to a file)."""

    def __init__(self, echo_finals: bool) -> None:
        self.tty = sys.stderr.isatty()
        self.echo_finals = echo_finals

    def partial(self, u: Utterance) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K… " + u.text[-100:])
            sys.stderr.flush()

    def final(self, u: Utterance) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
        if self.echo_finals:
            sys.stderr.write(f"[{clock(u.start)[:8]}] {u.text}\n")
        sys.stderr.flush()


def listen_setup(
    app: App, listen: ListenSettings, grammar: list[str] | None = None, realtime: bool = False, fast: bool = False
) -> tuple[Recognizer, AudioSource]:
    """The recognizer and the audio source (checked, not yet opened)."""
    lang = parse_language(listen.language).code if listen.language else None
    endpoint = EndpointSettings(trailing_silence=listen.silence, max_utterance=listen.max_utterance)
    recognizer = make_recognizer(
        app.store,
        listen.engine,
        listen.stt_model,
        lang,
        endpoint,
        threads=app.machine.physical_cores,
        grammar=grammar,
        fast=fast,
    )
    source = open_source(listen.input_spec, listen.device, realtime=realtime, on_overflow=status)
    source.check()
    return recognizer, source


@click.command()
@listen_options()
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Notes file [default: stdout].")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["txt", "md", "srt", "vtt", "jsonl"]),
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
    recognizer, source = listen_setup(app, listen)
    notes_format = format_for(output, fmt)
    writer = NoteWriter(output, notes_format, overwrite=overwrite, source=source.name)
    display = LiveDisplay(echo_finals=output is not None)
    transcriber = Transcriber(source, recognizer, writer, on_partial=display.partial, on_final=display.final)
    interrupted = False
    with writer, GracefulStop(source) as stop:
        status(
            f"transcribing {source.name} with {recognizer.engine} ({recognizer.name})"
            f"{' -> ' + str(output) if output else ''}; Ctrl-C to stop"
        )
        try:
            stats = transcriber.run()
        except KeyboardInterrupt:
            interrupted, stats = True, transcriber.stats
        finally:
            recognizer.close()
        if summary and stats.transcript and not interrupted:
            status("summarising ...")
            backend = open_backend(app, llm)
            try:
                notes = summarize(backend, stats.transcript)
            finally:
                backend.close()
            _write_summary(writer, output, notes_format, notes)
    where = f" -> {output}" if output else ""
    halted = " (stopped)" if stop.requested or interrupted else ""
    status(
        f"transcribed {stats.seconds:.1f} s of audio: {stats.utterances} utterances, {stats.words} words{where}{halted}"
    )


def _write_summary(writer: NoteWriter, output: Path | None, fmt: str, notes: str) -> None:
    block = f"\n### Summary\n\n{notes}\n"
    if output is None or fmt == "md":
        writer.append_text(block)
        return
    target = output.with_suffix(".summary.md")
    with NoteWriter(target, "md", source=writer.source) as md:
        md.append_text(block)
    status(f"summary -> {target}")
