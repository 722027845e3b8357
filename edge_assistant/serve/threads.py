"""Blocking model work off the event loop: a generator run in its own thread, read as an async iterator."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TypeVar

from ..memory import give_back

T = TypeVar("T")
_END = object()


async def iterate_in_thread(
    make: Callable[[], Iterator[T]], lock: threading.Lock | None = None
) -> AsyncGenerator[T, None]:
    """Items of `make()` as the thread produces them (holding `lock` while it works). Leaving the loop early (a
    client gone, a cancelled task) stops the thread at its next item and closes the generator there, so a
    generation stops with it."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def put(item: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        with lock or contextlib.nullcontext():
            produce()
        give_back()

    def produce() -> None:
        try:
            items = make()
            try:
                for item in items:
                    put(item)
                    if stop.is_set():
                        break
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # handed to the reader
            put(exc)
        put(_END)

    worker = threading.Thread(target=work, name="serve-work", daemon=True)
    worker.start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        await asyncio.to_thread(worker.join)
