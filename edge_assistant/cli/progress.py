"""Progress bars on stderr (tqdm, which huggingface_hub already brings): quick on a terminal, sparse in a log."""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm import tqdm


class ByteBar(tqdm):  # type: ignore[misc, type-arg]
    """A byte progress bar on stderr with size and speed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("mininterval", 0.5 if sys.stderr.isatty() else 5.0)
        kwargs.setdefault("dynamic_ncols", True)
        super().__init__(*args, **kwargs)


def _columns(stream: Any) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


class AudioBar(tqdm):  # type: ignore[misc, type-arg]
    """How far through a recording: audio time done of the total, speed in times real time, time left."""

    def __init__(self, total: float | None, **kwargs: Any) -> None:
        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("mininterval", 0.5)
        if _columns(kwargs["file"]) > 0:
            kwargs.setdefault("dynamic_ncols", True)
        else:  # a terminal that does not say its size (a bare pseudo-terminal) would get no bar at all
            kwargs.setdefault("ncols", 100)
            kwargs.setdefault("nrows", 24)
        kwargs.setdefault("smoothing", 0.1)
        bar = "{percentage:3.0f}%|{bar}| " if total else ""
        kwargs.setdefault("bar_format", bar + "{n_fmt}{total_fmt} audio, {rate_fmt} [{elapsed}<{remaining}]")
        super().__init__(total=total, unit="s", **kwargs)

    @property
    def format_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = super().format_dict
        d["n_fmt"] = self.format_interval(d["n"])
        d["total_fmt"] = f" of {self.format_interval(d['total'])}" if d.get("total") else ""
        rate = d.get("rate") or (d["n"] / d["elapsed"] if d.get("elapsed") else None)
        d["rate_fmt"] = f"{rate:.1f}x real time" if rate else "?x real time"
        return d

    def advance(self, seconds: float) -> None:
        """Audio time done so far (never goes back)."""
        seconds = min(seconds, self.total) if self.total else seconds
        if seconds > self.n:
            self.update(seconds - self.n)
