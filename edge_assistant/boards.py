"""Boards that recommendations can be made for (boards.toml): memory, cores, CPU features and the memory
bandwidth that llama.cpp's generation gets on them, each with its public source."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import tomllib

from .errors import UsageError


@dataclass(frozen=True)
class PublicRun:
    """A public measurement of generation speed on a board."""

    model: str
    tok_s: float
    source: str
    gb_per_token: float | None = None
    """Weight bytes read per token of that file, for calibration runs (GB = 1e9 bytes)."""


@dataclass(frozen=True)
class Board:
    id: str
    name: str
    memory_bytes: int
    os_reserve_bytes: int
    cores: int
    cpu: str
    features: tuple[str, ...]
    features_source: str
    memory: str
    llm_bandwidth: float
    """Bytes/s that token generation reads on this board (all cores)."""
    llm_bandwidth_source: str
    calibration: tuple[PublicRun, ...] = ()
    checks: tuple[PublicRun, ...] = ()
    """Public measurements of catalog models, for checking predictions (not used to make them)."""

    @property
    def budget(self) -> int:
        """Memory left for the assistant."""
        return self.memory_bytes - self.os_reserve_bytes


def _run(raw: dict[str, Any]) -> PublicRun:
    return PublicRun(raw["model"], float(raw["tok_s"]), raw["source"], raw.get("gb_per_token"))


def _board(raw: dict[str, Any]) -> Board:
    return Board(
        id=raw["id"],
        name=raw["name"],
        memory_bytes=int(float(raw["memory_gb"]) * 1024**3),
        os_reserve_bytes=int(float(raw["os_reserve_gb"]) * 1024**3),
        cores=int(raw["cores"]),
        cpu=raw["cpu"],
        features=tuple(raw["features"]),
        features_source=raw["features_source"],
        memory=raw["memory"],
        llm_bandwidth=float(raw["llm_bandwidth_gbs"]) * 1e9,
        llm_bandwidth_source=raw["llm_bandwidth_source"],
        calibration=tuple(_run(r) for r in raw.get("calibration", [])),
        checks=tuple(_run(r) for r in raw.get("check", [])),
    )


@lru_cache(maxsize=1)
def load_boards() -> dict[str, Board]:
    data = tomllib.loads(files("edge_assistant").joinpath("boards.toml").read_text(encoding="utf-8"))
    return {b.id: b for b in map(_board, data["board"])}


def board(board_id: str) -> Board:
    """The board by id; an unknown id fails with the known ones."""
    boards = load_boards()
    key = board_id.strip().lower()
    if key in boards:
        return boards[key]
    close = difflib.get_close_matches(key, list(boards), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UsageError(f"unknown device '{board_id}'{hint} (known: {', '.join(sorted(boards))})")
