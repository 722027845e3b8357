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
    """First Ctrl-C: stop listening and finish the utterance in progress; second: stop at once."""

    def __init__(self, source: AudioSource) -> None:
        self.source = source
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> GracefulStop:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        status("\nstopping (Ctrl-C again to quit at once) ...")
        self.source.close()

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)


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
