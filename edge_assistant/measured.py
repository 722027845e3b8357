"""Figures measured on synthetic twins (or real files) by `edge-assistant bench`, kept as data for `models
recommend`: bytes read per token, generation speed against the bandwidth bound, memory with the speech models.

The project ships the figures of its development machine (measured.toml, written by `make bench-seeds`);
a user's own `bench --synthetic` run writes <home>/measured.toml, which then wins.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import tomllib

from .errors import UsageError

ASSUMED_SHARE = 0.8
"""Share of the bandwidth bound assumed when none was measured."""
ASSUMED_SPEECH_RSS = 450 * 2**20
"""Speech recognizer + voice peak memory assumed when none was measured."""


@dataclass(frozen=True)
class ModelFigures:
    """One model:quant as measured."""

    ref: str
    file_bytes: int
    bytes_per_token: int
    tg_tps: float | None = None
    tg_share: float | None = None
    """Generation speed as a share of the bandwidth bound (bandwidth / bytes per token)."""
    peak_rss: int | None = None
    """Peak resident memory of the model alone (bench child process)."""
    assistant_rss: int | None = None
    """Peak resident memory of one assistant turn with the speech recognizer and the voice."""
    twin: bool = True


@dataclass(frozen=True)
class Measured:
    """A machine's measurements."""

    machine: str
    threads: int
    read_bandwidth: float
    """Bytes/s with `threads` threads, as `bench` measured it."""
    speech_rss: int
    """Peak resident memory of the speech recognizer and the voice, before the language model joins."""
    models: dict[str, ModelFigures]
    source: str

    @property
    def tg_share(self) -> float:
        """Median share of the bandwidth bound that generation reached on the models measured (1B-class and
        up: bandwidth-bound), the efficiency used to predict the others."""
        shares = [m.tg_share for m in self.models.values() if m.tg_share is not None]
        return statistics.median(shares) if shares else ASSUMED_SHARE


def _parse(data: dict[str, Any], source: str) -> Measured:
    m = data["machine"]
    models = {
        raw["ref"]: ModelFigures(
            ref=raw["ref"],
            file_bytes=int(raw["file_bytes"]),
            bytes_per_token=int(raw["bytes_per_token"]),
            tg_tps=float(raw["tg_tps"]) if "tg_tps" in raw else None,
            tg_share=float(raw["tg_share"]) if "tg_share" in raw else None,
            peak_rss=int(raw["peak_rss"]) if "peak_rss" in raw else None,
            assistant_rss=int(raw["assistant_rss"]) if "assistant_rss" in raw else None,
            twin=bool(raw.get("twin", True)),
        )
        for raw in data.get("model", [])
    }
    return Measured(
        machine=str(m["name"]),
        threads=int(m["threads"]),
        read_bandwidth=float(m["read_bandwidth_gbs"]) * 1e9,
        speech_rss=int(m.get("speech_rss") or ASSUMED_SPEECH_RSS),
        models=models,
        source=source,
    )


def load_measured(user_file: Path | None = None) -> Measured:
    """The user's own measurements when present, else the shipped ones."""
    if user_file is not None and user_file.is_file():
        try:
            return _parse(tomllib.loads(user_file.read_text(encoding="utf-8")), str(user_file))
        except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read the measurements in {user_file}: {exc}") from None
    text = files("edge_assistant").joinpath("measured.toml").read_text(encoding="utf-8")
    return _parse(tomllib.loads(text), "edge_assistant/measured.toml (the project's development machine)")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(machine: str, threads: int, bandwidth: float, rows: list[dict[str, Any]], header: str) -> str:
    """measured.toml text from `bench --json` LLM rows (those with a memory footprint)."""
    speech = [r["footprint"]["after_voice"] for r in rows if r.get("footprint")]
    lines = [*(f"# {line}" for line in header.splitlines()), "schema = 1", "", "[machine]"]
    lines += [
        f"name = {_toml_value(machine)}",
        f"threads = {threads}",
        f"read_bandwidth_gbs = {bandwidth / 1e9:.2f}",
        f"speech_rss = {max(speech) if speech else 0}",
    ]
    for r in rows:
        ref = r.get("twin_of") or r["model"]
        lines += [
            "",
            "[[model]]",
            f"ref = {_toml_value(ref)}",
            f"twin = {_toml_value(bool(r.get('twin_of')))}",
            f"file_bytes = {r['file_bytes']}",
            f"bytes_per_token = {r['bytes_per_token']}",
            f"tg_tps = {r['tg_tps']:.2f}",
            f"tg_share = {r['tg_vs_bound']:.3f}",
            f"peak_rss = {r['peak_rss_bytes']}",
            f"assistant_rss = {r['footprint']['after_llm']}",
        ]
    return "\n".join(lines) + "\n"
