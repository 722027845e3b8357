"""Enter on a terminal (or a line on piped stdin): push-to-talk and stopping an answer."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from typing import TextIO


class EnterKeys:
    """Lines read from a text stream on a thread started by `start()`; `on_press` runs at each one."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.on_press: Callable[[], None] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name="keys", daemon=True)
            self._thread.start()

    def _read(self) -> None:
        for line in self.stream or sys.stdin:
            if self.on_press is not None:
                self.on_press()
            self._lines.put(line)
        self._lines.put(None)

    def wait(self) -> bool:
        """Block until Enter; False at the end of input."""
        return self._lines.get() is not None
