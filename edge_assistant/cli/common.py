"""Shared CLI plumbing: the app context and output helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import click

from ..catalog import load_catalog
from ..hardware import Machine, detect
from ..settings import Paths
from ..store import Store


@dataclass
class App:
    """What every command needs, built lazily."""

    verbose: bool = False
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
