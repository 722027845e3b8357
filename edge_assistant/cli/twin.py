"""`edge-assistant twin`: write a synthetic twin of a catalog model (real shapes, random weights)."""

from __future__ import annotations

from pathlib import Path

import click

from ..bench.twins import resolve, twin_cache
from ..errors import UsageError
from ..twins import build_twin, twin_name
from .common import App, pass_app, status


@click.command()
@click.argument("spec", metavar="MODEL[:QUANT]")
@click.option("--layers", type=int, help="Only the first N layers (a small twin of the same architecture).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the GGUF.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), help="Cache for vocabularies.")
@click.option("--threads", type=click.IntRange(1, 256), help="Quantizer threads [default: physical cores].")
@pass_app
def twin(app: App, spec: str, layers: int | None, output: Path | None, cache: Path | None, threads: int | None) -> None:
    """Write a GGUF with a catalog model's architecture, tensor names, shapes, vocabulary size and quantization
    types, filled with random weights: the same speed and memory as the real model, without its download."""
    if layers is not None and layers < 1:
        raise UsageError("--layers must be at least 1")
    model, quant = resolve(app.store.catalog, spec)
    if model.shape is not None and layers is not None and layers > model.shape.layers:
        raise UsageError(f"--layers {layers}: {model.id} has {model.shape.layers} layers")
    cache = cache or twin_cache()
    target = output or Path.cwd() / twin_name(model, quant, layers)
    status(f"writing the twin of {model.id}:{quant} ...")
    build_twin(model, quant, target, cache, layers, threads or app.machine.physical_cores)
    click.echo(str(target))
