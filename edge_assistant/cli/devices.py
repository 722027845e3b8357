"""`edge-assistant devices`: audio inputs and outputs."""

from __future__ import annotations

from dataclasses import asdict

import click

from ..audio.devices import list_devices
from .common import App, emit_json, json_option, pass_app, status


@click.command()
@json_option
@pass_app
def devices(app: App, as_json: bool) -> None:
    """Audio devices: inputs and outputs, the defaults marked, the rates they take."""
    rows = list_devices()
    if as_json:
        emit_json(
            [{**asdict(d), "input_rates": list(d.input_rates), "output_rates": list(d.output_rates)} for d in rows]
        )
        return
    if not rows:
        status("no audio devices found (use --input FILE for speech and --speak-to FILE for replies)")
    for d in rows:
        marks = [m for m, on in (("default input", d.default_input), ("default output", d.default_output)) if on]
        kinds = [f"{d.inputs} in" if d.inputs else "", f"{d.outputs} out" if d.outputs else ""]
        rates = sorted(set(d.input_rates) | set(d.output_rates))
        click.echo(
            f"{d.index:3}  {d.name}  ({', '.join(k for k in kinds if k)}; rates "
            f"{', '.join(map(str, rates)) or '?'}){'  *' + ', '.join(marks) if marks else ''}"
        )
