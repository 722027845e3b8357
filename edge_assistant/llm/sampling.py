"""Sampling defaults per model: the user's options, else the GGUF's general.sampling.* keys, else the catalog's
(publisher's) recommendation, else ours. An unset seed is a fresh random seed for every answer."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..catalog import Sampling
from .options import GenerationOptions

DEFAULTS = Sampling(
    source="edge-assistant defaults", temperature=0.7, top_p=0.95, top_k=40, min_p=0.05, repeat_penalty=1.1
)
"""For models whose publisher recommends nothing."""
GGUF_KEYS = {
    "temperature": "general.sampling.temp",
    "top_p": "general.sampling.top_p",
    "top_k": "general.sampling.top_k",
    "min_p": "general.sampling.min_p",
    "repeat_penalty": "general.sampling.penalty_repeat",
}
FIELDS = tuple(GGUF_KEYS)


@dataclass(frozen=True)
class Resolved:
    """The sampling of one answer, every field set."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    seed: int


def from_gguf(metadata: Mapping[str, Any]) -> Sampling | None:
    """The publisher's sampling as the GGUF's general.sampling.* keys state it (None when it has none)."""
    values = {name: metadata[key] for name, key in GGUF_KEYS.items() if key in metadata}
    if not values:
        return None
    if "top_k" in values:
        values["top_k"] = int(values["top_k"])
    for name in ("temperature", "top_p", "min_p", "repeat_penalty"):
        if name in values:
            values[name] = float(values[name])
    return Sampling(source="the GGUF's general.sampling.* keys", **values)


def merge(*layers: Sampling | None) -> Sampling:
    """Field by field, the first layer that sets it; DEFAULTS last."""
    chosen: dict[str, Any] = {}
    sources: list[str] = []
    for layer in (*layers, DEFAULTS):
        if layer is None:
            continue
        used = False
        for name in FIELDS:
            value = getattr(layer, name)
            if name not in chosen and value is not None:
                chosen[name] = value
                used = True
        if used:
            sources.append(layer.source)
    return Sampling(source="; ".join(sources), **chosen)


def fresh_seed() -> int:
    """A new random seed (llama.cpp takes 32 bits)."""
    return secrets.randbits(31)


def resolve(options: GenerationOptions, defaults: Sampling) -> Resolved:
    """What to sample with: the options where they are set, the model's defaults elsewhere."""
    base = merge(defaults)
    values = {f.name: getattr(options, f.name) for f in fields(options) if f.name in FIELDS}
    pick = {name: values[name] if values[name] is not None else getattr(base, name) for name in FIELDS}
    return Resolved(
        temperature=float(pick["temperature"]),
        top_p=float(pick["top_p"]),
        top_k=int(pick["top_k"]),
        min_p=float(pick["min_p"]),
        repeat_penalty=float(pick["repeat_penalty"]),
        seed=options.seed if options.seed is not None else fresh_seed(),
    )
