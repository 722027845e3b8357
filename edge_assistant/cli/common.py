"""Shared CLI plumbing: the app context, output helpers and the option groups commands share."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from ..catalog import load_catalog
from ..errors import UsageError
from ..hardware import Machine, detect
from ..llm.backend import Backend
from ..llm.options import GenerationOptions
from ..modes.parts import backend_for
from ..settings import EndpointSettings, ListenSettings, LlmSettings, Paths, SpeakSettings
from ..store import Store


@dataclass
class App:
    """What every command needs, built lazily."""

    verbose: bool = False
    offline: bool = False
    """The user asked for no network at all (HF_HUB_OFFLINE, EDGE_ASSISTANT_OFFLINE), as read at start."""
    _cache: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def paths(self) -> Paths:
        return Paths.from_env()

    @cached_property
    def store(self) -> Store:
        return Store(self.paths.models, load_catalog(self.paths.catalog_file))

    @cached_property
    def machine(self) -> Machine:
        return detect()


pass_app = click.make_pass_decorator(App, ensure=True)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def status(message: str) -> None:
    """A status line on stderr."""
    click.echo(message, err=True)


def _utf8(text: str, where: str) -> str:
    """`text` if it is valid UTF-8 text (arguments in a non-UTF-8 locale arrive with escaped bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(f"{where} is not UTF-8 text (at character {exc.start}); convert it first") from None
    return text


def decode_input(data: bytes, where: str = "stdin") -> str:
    """Bytes read from stdin as UTF-8 text; a UsageError naming the first bad byte otherwise."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); convert it first, "
            "e.g. with iconv -f latin1 -t utf-8"
        ) from None


def text_input(args: tuple[str, ...]) -> str:
    """The text to work on: the arguments, else stdin when it is not a terminal; always valid UTF-8."""
    text = _utf8(" ".join(args), "the text given").strip()
    if text or sys.stdin.isatty():
        return text
    return decode_input(sys.stdin.buffer.read()).strip()


def read_line(interactive: bool) -> str | None:
    """One line of a conversation (None at the end), checked to be UTF-8 text."""
    if interactive:
        try:
            return _utf8(input("> "), "that line")
        except EOFError:
            return None
    raw = sys.stdin.buffer.readline()
    return decode_input(raw, "that line") if raw else None


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{n} B"


def table(rows: list[list[str]], header: list[str]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def grouped(name: str, cls: type[Any], options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """Click options whose values reach the command as one settings object `name`, not loose arguments."""
    fields = {f.name for f in dataclasses.fields(cls)}

    def decorate(func: Any) -> Any:
        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {key: kwargs.pop(key) for key in list(kwargs) if key in fields}
            return func(*args, **{name: cls(**values)}, **kwargs)

        for option in reversed(options):
            command = option(command)
        return command

    return decorate


MODEL_OPTION = click.option(
    "-m",
    "--model",
    envvar="EDGE_ASSISTANT_MODEL",
    help="MODEL[:QUANT], OWNER/REPO/FILE.gguf or a .gguf path [default: best installed].",
)
RUNTIME_OPTIONS = [
    click.option(
        "--threads",
        type=click.IntRange(1, 256),
        envvar="EDGE_ASSISTANT_THREADS",
        help="CPU threads [default: physical cores].",
    ),
    click.option(
        "--ctx",
        "ctx_cap",
        type=click.IntRange(256, 1 << 20),
        default=LlmSettings.ctx_cap,
        show_default=True,
        envvar="EDGE_ASSISTANT_CTX",
        help="Context size cap in tokens.",
    ),
    click.option("--force", is_flag=True, help="Load a model even if it does not fit in memory."),
]
"""How a local model runs: threads, context cap, loading past the memory check (`LlmSettings` fields)."""

llm_options = grouped(
    "llm",
    LlmSettings,
    [
        MODEL_OPTION,
        click.option(
            "--backend",
            type=click.Choice(["local", "remote"]),
            default="local",
            show_default=True,
            envvar="EDGE_ASSISTANT_BACKEND",
            help="llama.cpp here, or an OpenAI-compatible server.",
        ),
        click.option("--base-url", envvar="EDGE_ASSISTANT_BASE_URL", help="Server URL for --backend remote."),
        click.option("--api-key", envvar="EDGE_ASSISTANT_API_KEY", help="API key for --backend remote."),
        *RUNTIME_OPTIONS,
        click.option(
            "--offline",
            is_flag=True,
            envvar="EDGE_ASSISTANT_OFFLINE",
            help="Refuse anything that would use the network (--backend remote).",
        ),
    ],
)
"""The options of every command that runs a language model, as `llm: LlmSettings`."""


def generation_options(func: Any) -> Any:
    options = [
        click.option(
            "--temperature",
            type=click.FloatRange(0, 5),
            help="Sampling temperature; 0 is greedy [default: the model's recommended sampling].",
        ),
        click.option(
            "--max-tokens", type=click.IntRange(1, 1 << 16), default=GenerationOptions.max_tokens, show_default=True
        ),
        click.option("--seed", type=int, help="Fixed seed for reproducible answers [default: a new one each answer]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def backend(app: App, settings: LlmSettings) -> Backend:
    """The language model backend the options ask for (checked, not loaded)."""
    settings = dataclasses.replace(settings, offline=settings.offline or app.offline)
    return backend_for(app.store, app.machine, settings, verbose=app.verbose)


def open_backend(app: App, settings: LlmSettings) -> Backend:
    """Build and open the language model backend."""
    llm = backend(app, settings)
    llm.open()
    return llm


def listen_options(
    silence: float = ListenSettings.silence, language: bool = True, max_utterance: bool = True
) -> Callable[[Any], Any]:
    """The options of a command that listens, as `listen: ListenSettings`."""
    options = [
        click.option(
            "-i",
            "--input",
            "input_spec",
            metavar="FILE|-",
            help="An audio or video file (wav, flac, mp3, m4a, mp4, webm, opus, ...), or - for raw 16 kHz s16le on "
            "stdin [default: the microphone].",
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
    options.append(
        click.option(
            "--voice-detector",
            type=click.Choice(["auto", "energy", "silero"]),
            default=EndpointSettings.detector,
            show_default=True,
            envvar="EDGE_ASSISTANT_VOICE_DETECTOR",
            help="What tells speech from the rest: loudness, Silero's detector (for steady noise: a fan, rain), or "
            "auto: loudness while the room is quiet, Silero while it is noisy.",
        )
    )
    if max_utterance:
        options.append(
            click.option(
                "--max-utterance",
                type=click.FloatRange(1, 600),
                default=EndpointSettings.max_utterance,
                show_default=True,
                help="Seconds after which an utterance is cut.",
            )
        )
    return grouped("listen", ListenSettings, options)


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
