"""`edge-assistant translate`: text translation through the language model."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path

import click

from ..errors import UsageError
from ..languages import Language, language
from ..modes.interpreter import Interpreter
from ..modes.translate import Translator
from ..modes.voice import Mouth
from ..notes import NoteWriter, format_for
from ..settings import ListenSettings, LlmSettings, SpeakSettings
from ..stt.types import Utterance
from ..tts.speaker import make_speaker
from .assistant import speak_options, speech_sink
from .audio import GracefulStop, LiveDisplay, listen_options, listen_setup
from .common import App, emit_json, json_option, llm_options, open_backend, pass_app, status


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
    body = " ".join(text).strip() or (sys.stdin.read().strip() if not sys.stdin.isatty() else "")
    if not body:
        raise UsageError("nothing to translate: pass the text as arguments or on stdin")
    backend = open_backend(app, llm)
    translator = Translator(backend, to_lang, from_lang)
    if hasattr(backend, "warm"):
        backend.warm(translator.prefix())
    results = []
    try:
        for paragraph in body.splitlines() or [body]:
            if not paragraph.strip():
                if not as_json:
                    click.echo()
                continue
            pieces: list[str] = []
            for original, reply in translator.translate(paragraph):
                results.append({"source": original, "translation": reply.text})
                if not as_json:
                    click.echo(("" if not pieces else " ") + reply.text, nl=False)
                pieces.append(reply.text)
            if not as_json:
                click.echo()
    finally:
        backend.close()
    if as_json:
        emit_json(
            {
                "to": to_lang.code,
                "from": from_lang.code if from_lang else None,
                "model": backend.name,
                "sentences": results,
                "text": " ".join(r["translation"] for r in results),
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
    recognizer, source = listen_setup(app, listen)
    mouth = None
    if speak.speak or speak.speak_to:
        sink = speech_sink(app, replace(speak, speak=True if speak.speak_to is None else None))
        mouth = Mouth(make_speaker(app.store, speak.voice, to_lang.code, app.machine.physical_cores), sink)
    backend = open_backend(app, llm)
    translator = Translator(backend, to_lang, from_lang)
    writer = NoteWriter(output, format_for(output, None), source=source.name) if output else None
    pairs: list[dict[str, object]] = []
    display = LiveDisplay(echo_finals=False)

    def show(u: Utterance, translation: str) -> None:
        display.final(u)
        pairs.append({"start": round(u.start, 3), "end": round(u.end, 3), "source": u.text, "translation": translation})
        if not as_json:
            click.echo(f"{u.text}\t=>\t{translation}")

    interpreter = Interpreter(
        recognizer, translator, mouth, writer, on_pair=show, on_partial=display.partial, live=listen.input_spec is None
    )
    status(f"translating speech from {source.name} into {to_lang.name}; Ctrl-C to stop")
    try:
        recognizer.open()
        if mouth is not None:
            mouth.open()
        backend.warm(translator.prefix())
        if writer is not None:
            writer.open()
        with GracefulStop(source), contextlib.suppress(KeyboardInterrupt):
            interpreter.run(source.chunks())
    finally:
        if writer is not None:
            writer.close()
        if mouth is not None:
            mouth.close()
        recognizer.close()
        backend.close()
    if as_json:
        emit_json(
            {
                "to": to_lang.code,
                "from": from_lang.code if from_lang else None,
                "model": backend.name,
                "utterances": pairs,
            }
        )
    status(f"translated {interpreter.count} utterances" + (f" -> {output}" if output else ""))
