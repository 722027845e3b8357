"""One request at a time per model, a bounded queue behind it, and a clear refusal when the queue is full.

A small board cannot run two generations (or two transcriptions) at once without slowing both down; so each
model has a lane. A request is admitted at once or refused at once (`BusyError`: HTTP 429, a Wyoming error
event), and an admitted one waits its turn in order.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from ..errors import BusyError
from ..memory import give_back

T = TypeVar("T")


class Lane:
    """The turn-taking of one model: one running, up to `depth` waiting."""

    def __init__(self, name: str, depth: int) -> None:
        self.name = name
        self.depth = depth
        self.admitted = 0
        """Requests running or waiting."""
        self._lock = asyncio.Lock()
        self.model = threading.Lock()
        """Held by the worker thread that uses the model: a worker still finishing after its request was dropped
        (a client gone mid-answer) keeps the next one waiting, so two never run the model at once."""

    def holding(self, work: Callable[[], T]) -> Callable[[], T]:
        """`work` made to run with the model held (in a worker thread)."""

        def held() -> T:
            with self.model:
                try:
                    return work()
                finally:
                    give_back()

        return held

    def admit(self) -> Turn:
        """A place in the queue, or BusyError when it is full. Synchronous, so a refusal never waits."""
        if self.admitted >= 1 + self.depth:
            waiting = self.admitted - 1
            raise BusyError(f"{self.name} is busy ({waiting} request{'s' if waiting != 1 else ''} waiting); try again")
        self.admitted += 1
        return Turn(self)


class Turn:
    """`async with lane.admit():` waits for the model, holds it, and gives the place back."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self._held = False
        self._done = False

    async def __aenter__(self) -> Turn:
        try:
            await self.lane._lock.acquire()
        except BaseException:
            self.release()
            raise
        self._held = True
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def release(self) -> None:
        """Give the place (and the model, when held) back; safe to call twice."""
        if self._done:
            return
        self._done = True
        self.lane.admitted -= 1
        if self._held:
            self._held = False
            self.lane._lock.release()
