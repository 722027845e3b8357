"""What a listening command shows on a terminal, and how Ctrl-C stops it gracefully."""

from __future__ import annotations

import signal
import sys
from typing import Any

from ..audio.sources import AudioSource
from ..notes import clock
from ..stt.types import Utterance
from .common import status


class GracefulStop:
    """The first Ctrl-C (SIGINT) or SIGTERM (a service manager stopping it) stops listening and finishes the
    utterance in progress, which is filed; the command then exits 130 or 143. A second one stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, source: AudioSource) -> None:
        self.source = source
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int | None:
        """128 + the signal that stopped it (130 for Ctrl-C, 143 for SIGTERM), None when nothing did."""
        return None if self.signum is None else 128 + self.signum

    def __enter__(self) -> GracefulStop:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        again = "Ctrl-C again" if signum == signal.SIGINT else "signal again"
        status(f"\nstopping after this utterance ({again} to quit at once) ...")
        self.source.close()

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


class LiveDisplay:
    """Partial text on an overwritten stderr line; finals as lines (when notes go to a file)."""

    def __init__(self, echo_finals: bool) -> None:
        self.tty = sys.stderr.isatty()
        self.echo_finals = echo_finals

    def partial(self, u: Utterance) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K… " + u.text[-100:])
            sys.stderr.flush()

    def final(self, u: Utterance) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
        if self.echo_finals:
            sys.stderr.write(f"[{clock(u.start)[:8]}] {u.text}\n")
        sys.stderr.flush()
