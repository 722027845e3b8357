"""`edge-assistant serve`: the Wyoming server and the OpenAI-compatible API, over the same loaded models."""

from __future__ import annotations

import importlib.util
import logging

import click

from ..errors import NotInstalledError, UsageError
from ..modes.parts import backend_for
from ..serve.address import parse_address
from ..settings import OPENAI_ADDRESS, WYOMING_ADDRESS, ListenSettings, LlmSettings, ServeSettings
from .common import MODEL_OPTION, RUNTIME_OPTIONS, App, grouped, pass_app, status

serve_llm_options = grouped(
    "llm",
    LlmSettings,
    [
        MODEL_OPTION,
        *RUNTIME_OPTIONS,
    ],
)
"""The language model options of `serve` (its --api-key is the server's own key, not a remote backend's)."""

serve_listen_options = grouped(
    "listen",
    ListenSettings,
    [
        click.option("--engine", type=click.Choice(["vosk", "whisper"]), help="Speech engine [default: by model]."),
        click.option("--stt-model", envvar="EDGE_ASSISTANT_STT_MODEL", help="Default speech model id or folder."),
        click.option("--language", help="Default spoken language (ISO code) [default: English]."),
        click.option(
            "--silence",
            type=click.FloatRange(0.1, 10),
            default=ServeSettings.silence,
            show_default=True,
            help="Seconds of silence that end an utterance within a request (each is recognised as it ends).",
        ),
    ],
)


@click.command()
@click.option(
    "--wyoming",
    is_flag=False,
    flag_value=WYOMING_ADDRESS,
    envvar="EDGE_ASSISTANT_WYOMING",
    metavar="tcp://HOST:PORT",
    help=f"Serve Wyoming (asr, tts, handle) for Home Assistant [alone: {WYOMING_ADDRESS}].",
)
@click.option(
    "--openai",
    is_flag=False,
    flag_value=OPENAI_ADDRESS,
    envvar="EDGE_ASSISTANT_OPENAI",
    metavar="HOST:PORT",
    help=f"Serve the OpenAI-compatible HTTP API [alone: {OPENAI_ADDRESS}].",
)
@click.option(
    "--api-key",
    "server_key",
    envvar="EDGE_ASSISTANT_API_KEY",
    help="Key HTTP clients must send (Authorization: Bearer KEY); required beyond 127.0.0.1.",
)
@click.option("--voice", envvar="EDGE_ASSISTANT_VOICE", help="Default voice (models list --kind tts, espeak-ng).")
@click.option(
    "--queue",
    type=click.IntRange(0, 1000),
    default=ServeSettings.queue,
    show_default=True,
    help="Requests that may wait for a busy model; more are refused (HTTP 429, a Wyoming error).",
)
@click.option(
    "--max-audio",
    "max_audio_seconds",
    type=click.FloatRange(1, 86400),
    default=ServeSettings.max_audio_seconds,
    show_default=True,
    help="Longest audio one request may send, in seconds.",
)
@click.option(
    "--max-body",
    "max_body_mb",
    type=click.FloatRange(0.01, 4096),
    default=ServeSettings.max_body_mb,
    show_default=True,
    help="Largest HTTP request body, in MiB.",
)
@serve_listen_options
@serve_llm_options
@pass_app
def serve(
    app: App,
    /,
    wyoming: str | None,
    openai: str | None,
    server_key: str | None,
    voice: str | None,
    queue: int,
    max_audio_seconds: float,
    max_body_mb: float,
    listen: ListenSettings,
    llm: LlmSettings,
) -> None:
    """Serve the models to other programs until Ctrl-C or SIGTERM: Home Assistant over the Wyoming protocol
    (speech to text, text to speech, and the language model as a conversation agent) and an OpenAI-compatible
    HTTP API (/v1/models, /v1/chat/completions, /v1/audio/transcriptions, /v1/audio/speech), both at once in
    one process.

    Listens on 127.0.0.1 unless a host is given; the HTTP API needs --api-key to listen beyond it. This is
    the one command besides `models pull` that opens sockets, and it only listens: it never connects out.
    """
    if not wyoming and not openai:
        raise UsageError("nothing to serve: pass --wyoming [tcp://HOST:PORT] and/or --openai [HOST:PORT]")
    settings = ServeSettings(
        wyoming=wyoming,
        openai=openai,
        api_key=server_key or None,
        queue=queue,
        max_audio_seconds=max_audio_seconds,
        max_body_mb=max_body_mb,
    )
    if wyoming:
        parse_address(wyoming, "tcp")
    if openai and not parse_address(openai, "http").loopback and not settings.api_key:
        raise UsageError(
            f"the HTTP API on {openai} would be open to the network: set --api-key (or EDGE_ASSISTANT_API_KEY)"
        )
    _ = listen.language_code  # an unknown language fails now, before anything loads
    backend_for(app.store, app.machine, llm, verbose=app.verbose)  # a missing model fails now, too
    # the HTTP stack is imported only to serve HTTP: Wyoming alone is ~17 MiB lighter without it
    missing = [name for name in ("fastapi", "uvicorn") if openai and importlib.util.find_spec(name) is None]
    try:
        if missing:
            raise ImportError(name=missing[0])
        from ..serve.engines import Engines
        from ..serve.server import Server
    except ImportError as exc:
        raise NotInstalledError(f"serve needs the {exc.name} package: pip install 'edge-assistant[serve]'") from None
    logging.getLogger("edge_assistant.serve").setLevel(logging.DEBUG if app.verbose else logging.INFO)
    engines = Engines(app.store, app.machine, listen, llm, settings, voice=voice, verbose=app.verbose)
    server = Server(engines, settings, notify=status, verbose=app.verbose)
    try:
        server.open()
        server.run()
    finally:
        server.close()
