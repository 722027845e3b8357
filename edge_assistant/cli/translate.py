"""`edge-assistant translate`: text translation through the language model."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import UsageError
from ..languages import language
from ..modes.translate import Translator
from .common import App, emit_json, json_option, llm_options, open_backend, pass_app


@click.command()
@click.argument("text", nargs=-1)
@click.option("--to", "target", required=True, help="Target language: ISO code (ja, fr, de, ...) or name.")
@click.option("--from", "source", help="Source language [default: detected by the model].")
@llm_options
@json_option
@pass_app
def translate(app: App, /, text: tuple[str, ...], target: str, source: str | None, as_json: bool, **llm: Any) -> None:
    """Translate text (arguments or stdin), sentence by sentence, streamed to stdout."""
    to_lang, from_lang = language(target), language(source) if source else None
    body = " ".join(text).strip() or (sys.stdin.read().strip() if not sys.stdin.isatty() else "")
    if not body:
        raise UsageError("nothing to translate: pass the text as arguments or on stdin")
    backend = open_backend(app, **llm)
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
