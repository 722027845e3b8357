"""Both faces in one process and one event loop, sharing the loaded models; a clean stop on Ctrl-C or SIGTERM.

The sockets are bound before the models load (a taken port fails at once), and connections are accepted once
everything is loaded. The first Ctrl-C or SIGTERM stops accepting, lets the requests in flight finish (for at
most `grace` seconds) and returns; a second one stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from ..memory import give_back, limit_arenas
from ..settings import ServeSettings
from .address import Address, bind, parse_address
from .chats import Chats
from .engines import Engines
from .wyoming import LINE_LIMIT, WyomingHandler

log = logging.getLogger(__name__)
Notify = Callable[[str], None]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _uvicorn_server(app: object, grace: float, verbose: bool) -> object:
    """A uvicorn server that leaves the signals to us."""
    import uvicorn

    class Quiet(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        lifespan="off",
        log_level="info" if verbose else "warning",
        access_log=verbose,
        timeout_graceful_shutdown=max(1, int(grace)),
        ws="none",
        server_header=False,
    )
    return Quiet(config)


@dataclass
class Server:
    """`open()` binds and loads, `run()` serves until stopped, `close()` frees the models."""

    engines: Engines
    settings: ServeSettings
    notify: Notify = lambda message: None
    verbose: bool = False
    wyoming: Address | None = None
    openai: Address | None = None
    _sockets: dict[str, socket.socket] = field(default_factory=dict)
    _handlers: dict[asyncio.Task[None], WyomingHandler] = field(default_factory=dict)
    _stop: asyncio.Event | None = None
    _signals: int = 0
    _http: object = None

    def __post_init__(self) -> None:
        if self.settings.wyoming:
            self.wyoming = parse_address(self.settings.wyoming, "tcp")
        if self.settings.openai:
            self.openai = parse_address(self.settings.openai, "http")

    def open(self) -> None:
        """Bind the ports (now, so a taken one fails before minutes of loading), then load the models."""
        limit_arenas()
        if self.wyoming is not None:
            self._sockets["wyoming"] = bind(self.wyoming)
        if self.openai is not None:
            self._sockets["openai"] = bind(self.openai)
        self.engines.open(self.notify)
        give_back()

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        self.engines.close()

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM; requests in flight are finished first."""
        asyncio.run(self._serve())

    # -- the loop ------------------------------------------------------------------------------------
    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal)
        wyoming = http = None
        http_task: asyncio.Task[None] | None = None
        try:
            if "wyoming" in self._sockets:
                chats = Chats(self.engines.chat.part, self.engines.system)
                wyoming = await asyncio.start_server(
                    lambda r, w: self._connect(r, w, chats), sock=self._sockets["wyoming"], limit=LINE_LIMIT
                )
                self.notify(f"Wyoming (asr, tts, handle) on tcp://{self.wyoming}")
            if "openai" in self._sockets:
                from .openai import create_app

                http = self._http = _uvicorn_server(
                    create_app(self.engines, self.settings), self.settings.grace, self.verbose
                )
                http_task = asyncio.create_task(http.serve(sockets=[self._sockets["openai"]]))  # type: ignore[attr-defined]
                self.notify(f"OpenAI-compatible API on http://{self.openai}/v1")
            self.notify("ready; Ctrl-C or SIGTERM stops")
            waits: list[asyncio.Future[object]] = [asyncio.ensure_future(self._stop.wait())]
            if http_task is not None:
                waits.append(http_task)  # type: ignore[arg-type]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            busy = sum(h.in_request for h in self._handlers.values())
            self.notify(f"stopping: finishing {busy} Wyoming request(s) and any HTTP requests in flight ...")
            await self._drain(wyoming, http, http_task)
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        self.notify("stopped")

    def _on_signal(self) -> None:
        self._signals += 1
        assert self._stop is not None
        self._stop.set()
        if self._signals > 1:
            self.notify("stopping at once")
            if self._http is not None:
                self._http.force_exit = True  # type: ignore[attr-defined]
            for task in self._handlers:
                task.cancel()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chats: Chats) -> None:
        handler = WyomingHandler(reader, writer, self.engines, chats, self.settings)
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = handler
        try:
            await handler.run()
        finally:
            self._handlers.pop(task, None)

    async def _drain(self, wyoming: asyncio.Server | None, http: object, http_task: asyncio.Task[None] | None) -> None:
        """Stop accepting; let requests in flight finish within the grace time; then close what is left."""
        if wyoming is not None:
            wyoming.close()
        if http is not None:
            http.should_exit = True  # type: ignore[attr-defined]
        for handler in list(self._handlers.values()):
            handler.closing = True
            if not handler.in_request:
                await handler.stop()
        pending: list[asyncio.Future[object]] = list(self._handlers)  # type: ignore[arg-type]
        if http_task is not None:
            pending.append(http_task)  # type: ignore[arg-type]
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.settings.grace)
            for task in late:
                task.cancel()
            if late:
                self.notify(f"{len(late)} request(s) did not finish within {self.settings.grace:g} s")
                await asyncio.wait(late, timeout=5)
        if wyoming is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(wyoming.wait_closed(), timeout=5)
