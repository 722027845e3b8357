"""Benchmark subjects that are synthetic twins of catalog models (edge_assistant/twins.py), built once into a
cache shared by every checkout on the machine."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..catalog import Catalog, LlmModel, parse_spec
from ..errors import UsageError
from ..gguf import bytes_per_token, read_gguf
from ..twins import ensure_twin, require_shape

SEEDS = (
    "llama-3.2-1b-instruct:Q4_K_M",
    "llama-3.2-3b-instruct:Q4_K_M",
    "gemma-2-2b-it:Q4_K_M",
    "phi-3.5-mini-instruct:Q4_K_M",
    "ministral-3-3b-instruct:Q4_K_M",
)
"""One per seed family, at the quantization users pull by default."""


@dataclass(frozen=True)
class Twin:
    """A built twin and what it stands for."""

    model: LlmModel
    quant: str
    path: Path
    bytes_per_token: int
    """Weight bytes read per generated token (from the tensor table)."""

    @property
    def label(self) -> str:
        return f"{self.model.id}:{self.quant} (twin)"

    @property
    def real_bytes(self) -> int | None:
        """The real file's size per the catalog, for comparison with the twin's."""
        quant = self.model.quants.get(self.quant)
        return quant.bytes if quant else None


def twin_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-assistant" / "twins"


def expand(specs: tuple[str, ...]) -> list[str]:
    """`seeds` stands for one twin per seed family."""
    out: list[str] = []
    for spec in specs:
        out += list(SEEDS) if spec.strip().lower() == "seeds" else [spec]
    return list(dict.fromkeys(out))


def resolve(catalog: Catalog, spec: str) -> tuple[LlmModel, str]:
    """MODEL[:QUANT] of a catalog model that has a shape; the quant defaults to the model's default."""
    name, quant = parse_spec(spec)
    model = catalog.llm(name)
    require_shape(model)
    quant = (quant or model.default_quant).upper()
    if quant not in ("F16", "Q4_0", "Q4_1", "Q4_K_M", "Q4_K_S", "Q5_K_M", "Q6_K", "Q8_0"):
        raise UsageError(f"no twin at {quant}; choose Q4_K_M, Q4_0, Q8_0, Q5_K_M, Q6_K or F16")
    return model, quant


def prepare(
    catalog: Catalog, specs: tuple[str, ...], threads: int, notify: Callable[[str], None], cache: Path | None = None
) -> list[Twin]:
    """Resolve every spec first (bad input fails before any work), then build the missing twins."""
    wanted = [resolve(catalog, spec) for spec in expand(specs)]
    cache = cache or twin_cache()
    twins = []
    for model, quant in wanted:
        notify(f"twin of {model.id}:{quant} ...")
        path = ensure_twin(model, quant, cache, threads=threads)
        twins.append(Twin(model, quant, path, bytes_per_token(read_gguf(path))))
    return twins
