"""The `edge-assistant` command: a click group; the only place that prints and maps errors to exit codes."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from .. import __version__
from ..errors import EdgeError
from ..offline import hub_offline
from ..settings import HubSettings
from .common import App

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class EdgeGroup(click.Group):
    """A group that turns expected failures into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            sys.stderr.close()
            ctx.exit(141)
        except OSError as exc:
            if _verbose(ctx):
                raise
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(1)


def _verbose(ctx: click.Context) -> bool:
    app = ctx.find_object(App)
    return bool(app and app.verbose)


@click.group(cls=EdgeGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="edge-assistant")
@click.option("-v", "--verbose", is_flag=True, help="Log details (and llama.cpp's own log) to stderr.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """An offline assistant on small quantized LLMs: ask, chat, translate, transcribe.

    Models live in the models dir (see `edge-assistant models path`); only
    `models pull` uses the network, and only when asked.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = App(verbose=verbose, offline=HubSettings.from_env().offline)
    if ctx.invoked_subcommand != "models":  # only `models pull` may use the network
        ctx.with_resource(hub_offline())


def _register() -> None:
    from .ask import ask, chat
    from .assistant import assistant
    from .bench import bench
    from .devices import devices
    from .doctor import doctor
    from .models import models
    from .serve import serve
    from .transcribe import transcribe
    from .translate import translate
    from .twin import twin

    for command in (models, ask, chat, assistant, translate, transcribe, devices, bench, doctor, twin, serve):
        main.add_command(command)


_register()
