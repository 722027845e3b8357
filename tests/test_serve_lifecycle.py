"""How `serve` starts and stops: bad options before anything loads, a taken port, the key a non-loopback bind
needs (in a network namespace of its own), and Ctrl-C / SIGTERM finishing the requests in flight."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from edge_assistant.audio.sources import FileSource
from tests.helpers import ROOT, run
from tests.serving import Served, free_port, refused, wait_until

QUESTION = ROOT / "edge_assistant" / "data" / "question.wav"


def test_nothing_to_serve_is_a_usage_error() -> None:
    code, _, err = run("serve")
    assert code == 2 and "nothing to serve" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("address", ["0.0.0.0:8123", "192.0.2.7:8123", "[::]:8123"])
def test_the_http_api_beyond_loopback_needs_a_key(address: str) -> None:
    code, _, err = run("serve", "--openai", address)
    assert code == 2 and "--api-key" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("option", "value"), [("--wyoming", "http://127.0.0.1:1"), ("--openai", "127.0.0.1:99999")])
def test_a_bad_address_is_one_line(option: str, value: str) -> None:
    code, _, err = run("serve", option, value)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_taken_port_fails_before_the_models_load(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "edge_assistant", "serve", "--wyoming", f"tcp://127.0.0.1:{port}"],
            env=dict(os.environ, EDGE_ASSISTANT_HOME=str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: the port is in use"


def test_wyoming_alone_does_not_load_the_http_stack(tmp_path: Path) -> None:
    server = Served(["--wyoming", f"tcp://127.0.0.1:{free_port()}"], tmp_path).wait_ready()
    try:
        maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    finally:
        assert server.stop() == 0, server.stderr
    assert "_pydantic_core" not in maps  # FastAPI's models: ~17 MiB a Wyoming-only server does not need


def test_doctor_says_whether_the_ports_are_free(monkeypatch: pytest.MonkeyPatch) -> None:
    free = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("EDGE_ASSISTANT_WYOMING", f"tcp://127.0.0.1:{taken.getsockname()[1]}")
        monkeypatch.setenv("EDGE_ASSISTANT_OPENAI", f"127.0.0.1:{free}")
        _, out, _ = run("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out)}
    assert not checks["Wyoming port"]["ok"] and "in use" in checks["Wyoming port"]["detail"]
    assert "EDGE_ASSISTANT_WYOMING" in checks["Wyoming port"]["fix"]
    assert checks["HTTP API port"]["ok"] and str(free) in checks["HTTP API port"]["detail"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigterm_finishes_the_answer_in_flight(tmp_path: Path) -> None:
    port = free_port()
    server = Served(["--openai", f"127.0.0.1:{port}"], tmp_path).wait_ready()
    body = {
        "messages": [{"role": "user", "content": "Write a long story about a dragon."}],
        "stream": True,
        "max_tokens": 150,
        "seed": 3,
        "temperature": 0.8,
    }
    lines: list[str] = []
    started = threading.Event()

    def stream() -> None:
        with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=120) as r:
            for line in r.iter_lines():
                if line:
                    lines.append(line)
                    started.set()

    reader = threading.Thread(target=stream)
    reader.start()
    assert started.wait(120)
    server.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "stopping" in server.stderr)
    wait_until(lambda: refused(port))  # no new requests while the answer in flight goes on
    reader.join(120)
    assert server.proc.wait(60) == 0, server.stderr
    assert lines[-1] == "data: [DONE]"
    finish = json.loads(lines[-2][len("data: ") :])["choices"][0]["finish_reason"]
    assert finish in ("stop", "length")
    text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content", "") for line in lines[:-2])
    assert len(text.split()) > 10
    assert server.lines[-1] == "stopped" and "Traceback" not in server.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_lets_a_transcription_in_flight_finish(tmp_path: Path) -> None:
    port = free_port()
    server = Served(["--wyoming", f"tcp://127.0.0.1:{port}"], tmp_path).wait_ready()
    pcm = FileSource(QUESTION).read().astype("<i2").tobytes()
    half = len(pcm) // 2 - len(pcm) // 2 % 2

    async def talk() -> str:
        async with AsyncTcpClient("127.0.0.1", port, read_timeout=120) as client:
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=pcm[:half]).event())
            assert (await client.read_event()) is not None  # transcript-start: the request is in flight
            server.proc.send_signal(signal.SIGINT)
            await asyncio.to_thread(wait_until, lambda: "stopping" in server.stderr)
            await asyncio.to_thread(wait_until, lambda: refused(port))
            await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=pcm[half:]).event())
            await client.write_event(AudioStop().event())
            while True:
                event = await client.read_event()
                assert event is not None
                if Transcript.is_type(event.type):
                    return Transcript.from_event(event).text

    assert "capital of france" in asyncio.run(talk()).lower()
    assert server.proc.wait(60) == 0, server.stderr
    assert server.lines[-1] == "stopped" and "Traceback" not in server.stderr


# -- beyond loopback: a network namespace of the test's own ----------------------------------------------------
NS_ADDRESS = "10.213.7.1"


@pytest.fixture
def namespace() -> Iterator[str]:
    """A private network namespace with its own loopback and one non-loopback address on it: traffic to that
    address never leaves the namespace."""
    assert shutil.which("ip"), "iproute2 is missing: make test installs it (scripts/system-deps.sh)"
    name = f"ea-serve-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", f"{NS_ADDRESS}/32", "dev", "lo"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


CLIENT = """
import json, sys, httpx
url, key = sys.argv[1], sys.argv[2]
codes = {}
for label, headers in [("none", {}), ("wrong", {"Authorization": "Bearer nope"}),
                       ("right", {"Authorization": "Bearer " + key}), ("scheme", {"Authorization": key})]:
    r = httpx.get(url + "/v1/models", headers=headers, timeout=30)
    codes[label] = [r.status_code, r.json()]
print(json.dumps(codes))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_non_loopback_bind_refuses_a_missing_or_wrong_key(namespace: str, tmp_path: Path) -> None:
    key = "k-" + uuid.uuid4().hex
    prefix = ["ip", "netns", "exec", namespace]
    server = Served(["--openai", f"{NS_ADDRESS}:8080", "--api-key", key], tmp_path, prefix=prefix).wait_ready()
    try:
        out = subprocess.run(
            [*prefix, sys.executable, "-c", CLIENT, f"http://{NS_ADDRESS}:8080", key],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        codes = json.loads(out.stdout)
        for label in ("none", "wrong", "scheme"):
            assert codes[label][0] == 401 and codes[label][1]["error"]["code"] == "invalid_api_key"
        assert codes["right"][0] == 200 and codes["right"][1]["data"][0]["object"] == "model"
    finally:
        assert server.stop() == 0, server.stderr
