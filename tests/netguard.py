"""A socket guard inside the test process: while armed, opening a socket, connecting or looking a name up fails,
and is recorded even if the code under test swallows the error. Built on audit hooks (PEP 578), which see every
socket that Python code opens, in any thread, whatever library opens it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

EVENTS = ("socket.__new__", "socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.bind")


class NetworkUsed(RuntimeError):
    """A run mode touched the network."""


_lock = threading.Lock()
_armed = 0
attempts: list[str] = []


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _armed and event in EVENTS:
        what = f"{event}{args[1:] if event == 'socket.__new__' else args}"
        with _lock:
            attempts.append(what)
        raise NetworkUsed(f"a socket was used: {what}")


sys.addaudithook(_hook)


@contextmanager
def no_sockets() -> Iterator[list[str]]:
    """Fail every socket opened inside; yields the list of attempts (for the caller to assert it stays empty)."""
    global _armed
    with _lock:
        attempts.clear()
        _armed += 1
    try:
        yield attempts
    finally:
        with _lock:
            _armed -= 1
