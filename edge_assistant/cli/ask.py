"""`edge-assistant ask` and `chat`: answers streamed from the language model."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ..errors import EdgeError, UsageError
from ..llm.backend import Backend
from ..llm.conversation import Conversation
from ..llm.options import GenerationOptions, Reply
from ..settings import LlmSettings
from .common import (
    App,
    emit_json,
    generation_options,
    json_option,
    llm_options,
    open_backend,
    pass_app,
    read_line,
    status,
    text_input,
)
from .common import backend as build_backend

DEFAULT_SYSTEM = "You are a helpful assistant. Answer briefly and accurately."


def _options(temperature: float | None, max_tokens: int, seed: int | None) -> GenerationOptions:
    if temperature == 0:
        return GenerationOptions(
            temperature=0.0, top_k=1, repeat_penalty=1.0, max_tokens=max_tokens, seed=0 if seed is None else seed
        )
    return GenerationOptions(temperature=temperature, max_tokens=max_tokens, seed=seed)


def reply_json(reply: Reply, model: str, load_seconds: float | None) -> dict[str, Any]:
    t = reply.timings
    return {
        "text": reply.text,
        "model": model,
        "finish_reason": reply.finish_reason,
        "tokens": {"prompt": t.prompt_tokens, "cached": t.cached_tokens, "completion": t.completion_tokens},
        "timings": {
            "load_s": load_seconds,
            "ttft_s": round(t.ttft, 4),
            "total_s": round(t.total, 4),
            "tokens_per_s": round(t.tokens_per_s, 2),
        },
    }


@click.command()
@click.argument("prompt", nargs=-1)
@click.option("--system", default=DEFAULT_SYSTEM, show_default=True, help="System prompt.")
@llm_options
@generation_options
@json_option
@pass_app
def ask(
    app: App,
    /,
    prompt: tuple[str, ...],
    system: str,
    as_json: bool,
    temperature: float | None,
    max_tokens: int,
    seed: int | None,
    llm: LlmSettings,
) -> None:
    """Answer one question, streamed to stdout (the question from the arguments, or stdin)."""
    text = text_input(prompt)
    if not text:
        raise UsageError('ask what? e.g. edge-assistant ask "What is the capital of France?"')
    backend = open_backend(app, llm)
    conversation = Conversation(backend, system or None, _options(temperature, max_tokens, seed), notify=status)
    reply = Reply()
    try:
        for piece in conversation.ask(text, reply):
            if not as_json:
                click.echo(piece, nl=False)
    except KeyboardInterrupt:
        if as_json:
            emit_json(reply_json(reply, backend.name, getattr(backend, "load_seconds", None)))
        else:
            click.echo()
        raise
    finally:
        backend.close()
    if as_json:
        emit_json(reply_json(reply, backend.name, getattr(backend, "load_seconds", None)))
    else:
        click.echo()


CHAT_HELP = "/reset forgets the conversation, /model NAME switches model, /exit leaves (or Ctrl-D)."


def _readline_history(app: App) -> Path | None:
    try:
        import readline
    except ImportError:
        return None
    history = app.paths.home / "chat_history"
    try:
        history.parent.mkdir(parents=True, exist_ok=True)
        readline.read_history_file(history)
    except OSError:
        pass
    return history


def _switch(app: App, llm: LlmSettings, model: str, current: Backend, conversation: Conversation) -> Backend:
    """/model NAME: the new model when it can be found and loaded; else the error, and the current one goes on."""
    try:
        candidate = build_backend(app, replace(llm, model=model))
    except EdgeError as exc:
        status(f"error: {exc}")
        return current
    current.close()  # one model in memory at a time
    try:
        candidate.open()
    except EdgeError as exc:
        status(f"error: {exc}; staying with {current.name}")
        current.open()
        return current
    conversation.backend = candidate
    if conversation.prefix:
        candidate.warm(conversation.prefix)
    status(f"now chatting with {candidate.name}")
    return candidate


@click.command()
@click.option("--system", default=DEFAULT_SYSTEM, show_default=True, help="System prompt.")
@llm_options
@generation_options
@pass_app
def chat(
    app: App, /, system: str, temperature: float | None, max_tokens: int, seed: int | None, llm: LlmSettings
) -> None:
    """Talk with the model: one line a turn, history kept within the context. Works with piped stdin too."""
    interactive = sys.stdin.isatty()
    history = _readline_history(app) if interactive else None
    backend = open_backend(app, llm)
    conversation = Conversation(backend, system or None, _options(temperature, max_tokens, seed), notify=status)
    if conversation.prefix:
        backend.warm(conversation.prefix)
    if interactive:
        status(f"chatting with {backend.name}. {CHAT_HELP}")
    try:
        while True:
            try:
                line = read_line(interactive)
            except UsageError as exc:  # one bad line; the conversation goes on
                status(f"error: {exc}")
                continue
            if line is None:
                break
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                command, _, arg = line.partition(" ")
                if command in ("/exit", "/quit"):
                    break
                if command == "/reset":
                    conversation.reset()
                    status("conversation reset")
                elif command == "/model" and arg:
                    backend = _switch(app, llm, arg.strip(), backend, conversation)
                else:
                    status(CHAT_HELP)
                continue
            try:
                for piece in conversation.ask(line):
                    click.echo(piece, nl=False)
            except KeyboardInterrupt:
                status("\n[answer stopped]")
                if not interactive:
                    raise
            click.echo()
    finally:
        backend.close()
        if history is not None:
            import readline

            with contextlib.suppress(OSError):
                readline.write_history_file(history)
