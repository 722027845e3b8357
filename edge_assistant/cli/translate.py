"""`edge-assistant translate`: text or speech into another language, through the language model."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError
from ..files import check_outputs
from ..languages import Language, language
from ..modes.events import Partial, Translated
from ..modes.interpreter import Interpreter
from ..modes.parts import listening, mouth_for
from ..modes.translate import Translator
from ..notes import NoteWriter, format_for
from ..settings import ListenSettings, LlmSettings, SpeakSettings
from .common import (
    App,
    backend,
    emit_json,
    json_option,
    listen_options,
    llm_options,
    pass_app,
    speak_options,
    status,
    text_input,
)
from .live import GracefulStop, LiveDisplay


@click.command()
@click.argument("text", nargs=-1)
@click.option("--to", "target", required=True, help="Target language: ISO code (ja, fr, de, ...) or name.")
@click.option("--from", "source", help="Source language [default: detected by the model; English speech].")
@listen_options(language=False, max_utterance=False)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Keep a bilingual transcript (speech mode).")
@speak_options
@llm_options
@json_option
@pass_app
def translate(
    app: App,
    /,
    text: tuple[str, ...],
    target: str,
    source: str | None,
    listen: ListenSettings,
    output: Path | None,
    speak: SpeakSettings,
    as_json: bool,
    llm: LlmSettings,
) -> None:
    """Translate text (arguments or stdin) or speech (--input, --device), sentence by sentence, as it comes.

    Speech: each utterance is translated when it ends and printed beside the original; --speak says the
    translation in the target language's voice; -o keeps a bilingual transcript that survives a crash.
    """
    to_lang, from_lang = language(target), language(source) if source else None
    ctx = click.get_current_context()
    device_given = ctx.get_parameter_source("device") == click.core.ParameterSource.COMMANDLINE
    if listen.input_spec is not None or device_given:
        if text:
            raise UsageError("give either text or --input/--device, not both")
        listen = replace(listen, language=from_lang.code if from_lang else None)
        _speech(app, to_lang, from_lang, listen, output, speak, as_json, llm)
        return
    if speak.speak or speak.speak_to or output:
        raise UsageError("--speak, --speak-to and -o are for speech translation (--input or --device)")
    body = text_input(text)
    if not body:
        raise UsageError("nothing to translate: pass the text as arguments or on stdin")
    translator = Translator(backend(app, llm), to_lang, from_lang)
    results = []
    translator.open()
    try:
        for paragraph in body.splitlines() or [body]:
            if not paragraph.strip():
                if not as_json:
                    click.echo()
                continue
            for n, (original, reply) in enumerate(translator.translate(paragraph)):
                results.append({"source": original, "translation": reply.text})
                if not as_json:
                    click.echo(("" if n == 0 else " ") + reply.text, nl=False)
            if not as_json:
                click.echo()
    finally:
        translator.close()
    if as_json:
        _emit(translator, "sentences", results, text=" ".join(r["translation"] for r in results))


def _emit(translator: Translator, key: str, items: list[dict[str, Any]], **more: Any) -> None:
    """The JSON result of a translation: languages, model, and the translated items."""
    emit_json(
        {
            "to": translator.target.code,
            "from": translator.source.code if translator.source else None,
            "model": translator.backend.name,
            key: items,
            **more,
        }
    )


def _speech(
    app: App,
    to_lang: Language,
    from_lang: Language | None,
    listen: ListenSettings,
    output: Path | None,
    speak: SpeakSettings,
    as_json: bool,
    llm: LlmSettings,
) -> None:
    """The live interpreter: speech in, translations out (printed, spoken, filed)."""
    check_outputs([("the transcript", output), ("spoken translations", speak.speak_to)], [listen.input_path])
    recognizer, source = listening(app.store, app.machine, listen, status)
    mouth = None
    if speak.speak or speak.speak_to:
        wanted = replace(speak, speak=True if speak.speak_to is None else None)
        mouth = mouth_for(app.store, app.machine, wanted, to_lang.code, app.paths.home / "answers.wav", status)
    translator = Translator(backend(app, llm), to_lang, from_lang)
    writer = NoteWriter(output, format_for(output, None), source=source.name) if output else None
    mode = Interpreter(recognizer, translator, mouth, writer, live=listen.input_spec is None)
    pairs: list[dict[str, Any]] = []
    display = LiveDisplay(echo_finals=False)
    status(f"translating speech from {source.name} into {to_lang.name}; Ctrl-C to stop")
    with mode, GracefulStop(source) as stop, contextlib.suppress(KeyboardInterrupt):
        for event in mode.run(source):
            if isinstance(event, Partial):
                display.partial(event.utterance)
            elif isinstance(event, Translated):
                u = event.utterance
                display.final(u)
                pairs.append(
                    {
                        "start": round(u.start, 3),
                        "end": round(u.end, 3),
                        "source": u.text,
                        "translation": event.translation,
                    }
                )
                if not as_json:
                    click.echo(f"{u.text}\t=>\t{event.translation}")
    if as_json:
        _emit(translator, "utterances", pairs)
    status(f"translated {mode.count} utterances" + (f" -> {output}" if output else ""))
    if stop.exit_code is not None:
        click.get_current_context().exit(stop.exit_code)
