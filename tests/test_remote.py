"""RemoteBackend against a stub OpenAI-compatible server (errors, interrupts) and llama-cpp-python's real server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest

from edge_assistant.errors import BackendError
from edge_assistant.llm.options import GREEDY, GenerationOptions, Message, Reply
from edge_assistant.llm.remote import RemoteBackend, normalize_base_url
from tests.helpers import run, smollm2_path

pytestmark = pytest.mark.timeout(120)

QUESTION = [Message("system", "You are a helpful assistant."), Message("user", "What is the capital of France?")]


class Stub:
    """What the stub server does (`mode`) and what it saw."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.disconnected = threading.Event()
        self.disconnected_at = 0.0
        self.url = ""
        self.redirect_to = ""
        """mode "redirect": GET and POST answer 307 to this base URL, same path."""


def _chunk(content: str | None = None, finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]
    event: dict[str, Any] = {"id": "x", "object": "chat.completion.chunk", "model": "stub-model", "choices": choices}
    if usage:
        event["usage"] = usage
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _raw(self, status: int, data: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.end_headers()
            self.wfile.write(data)

        def _common(self) -> bool:
            if stub.mode == "redirect":
                self.send_response(307)
                self.send_header("Location", stub.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif stub.mode == "401":
                self._json(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
            elif stub.mode == "500":
                self._json(500, {"error": {"message": "boom", "type": "server_error"}})
            elif stub.mode == "garbage":
                self._raw(200, b"<html>this is not json</html>\n")
            else:
                return False
            return True

        def do_GET(self) -> None:
            stub.requests.append(("GET", self.path, {"authorization": self.headers.get("Authorization", "")}))
            if self._common():
                return
            if self.path == "/v1/models":
                self._json(
                    200,
                    {
                        "object": "list",
                        "data": [{"id": "stub-model", "meta": {"n_ctx_train": 2048}}, {"id": "other-model"}],
                    },
                )
            else:
                self._json(404, {"error": {"message": "File Not Found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            stub.requests.append(("POST", self.path, body))
            if self._common():
                return
            if self.path == "/tokenize" and stub.mode == "tokenize":
                self._json(200, {"tokens": list(range(len(body["content"].split())))})
            elif self.path != "/v1/chat/completions":
                self._json(404, {"error": {"message": "File Not Found"}})
            elif body["model"] not in ("stub-model", "other-model"):
                self._json(404, {"error": {"message": f"model {body['model']} not found"}})
            elif stub.mode == "slow":
                self._slow()
            else:
                self._raw(
                    200,
                    _chunk("Hello")
                    + _chunk(" world")
                    + _chunk(finish="stop")
                    + _chunk(usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15})
                    + b"data: [DONE]\n\n",
                    "text/event-stream",
                )

        def _slow(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                for i in range(20):
                    self.wfile.write(_chunk(f"piece{i} "))
                    time.sleep(0.2)
                self.wfile.write(_chunk(finish="stop") + b"data: [DONE]\n\n")
            except OSError:
                stub.disconnected_at = time.monotonic()
                stub.disconnected.set()

    return Handler


def _serve(host: str = "127.0.0.1") -> Iterator[Stub]:
    state = Stub()
    server = ThreadingHTTPServer((host, 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://{host}:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def stub() -> Iterator[Stub]:
    yield from _serve()


@pytest.fixture
def elsewhere() -> Iterator[Stub]:
    """A second server: another host, as far as a redirect is concerned (127.0.0.2 is loopback too)."""
    yield from _serve("127.0.0.2")


def _error(backend: RemoteBackend, action: str = "open") -> str:
    with pytest.raises(BackendError) as info:
        if action == "open":
            backend.open()
        else:
            list(backend.stream(QUESTION, GREEDY, Reply()))
    message = str(info.value)
    assert "\n" not in message and message
    return message


# -- URL handling and the happy path against the stub -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8080/",
        "http://127.0.0.1:8080/v1",
        "http://127.0.0.1:8080/v1/",
        "127.0.0.1:8080",
    ],
)
def test_base_url_is_normalised(url: str) -> None:
    assert normalize_base_url(url) == "http://127.0.0.1:8080/v1"


def test_constructor_does_no_io() -> None:
    backend = RemoteBackend("http://127.0.0.1:9/v1", model="m")
    assert backend.name == "m" and backend.context_length == 4096
    backend.close()


def test_stream_against_stub(stub: Stub) -> None:
    backend = RemoteBackend(stub.url + "/", api_key="secret", timeout=5)
    backend.open()
    assert backend.name == "stub-model" and backend.available == ["stub-model", "other-model"]
    assert backend.context_length == 2048  # meta.n_ctx_train, since the stub has no /props
    reply = Reply()
    options = GenerationOptions(temperature=0.0, top_p=0.5, max_tokens=7, seed=3, stop=("END",))
    assert list(backend.stream(QUESTION, options, reply)) == ["Hello", " world"]
    assert reply.text == "Hello world" and reply.finish_reason == "stop"
    assert reply.timings.completion_tokens == 3 and reply.timings.prompt_tokens == 12
    assert 0 < reply.timings.ttft <= reply.timings.total
    _, path, body = stub.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["stream"] is True and body["model"] == "stub-model"
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"], body["stop"]) == (
        0.0,
        0.5,
        7,
        3,
        ["END"],
    )
    assert body["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert stub.requests[0][2]["authorization"] == "Bearer secret"
    assert backend.warm(QUESTION[:1]) == 0.0
    backend.close()
    backend.close()


def test_count_tokens_uses_the_server_tokenizer_or_estimates(stub: Stub) -> None:
    backend = RemoteBackend(stub.url, timeout=5)
    backend.open()
    text = "system: You are a helpful assistant.\nuser: What is the capital of France?"
    assert backend.count_tokens(QUESTION) == len(text) // 4 + 8  # stub has no tokenize endpoint
    stub.mode = "tokenize"
    fresh = RemoteBackend(stub.url, timeout=5)
    assert fresh.count_tokens(QUESTION) == len(text.split()) + 8
    assert stub.requests[-1][1] == "/tokenize"


# -- errors: one line each, always BackendError -----------------------------------------------------------------


def test_unauthorized(stub: Stub) -> None:
    stub.mode = "401"
    assert "refused the API key" in _error(RemoteBackend(stub.url, api_key="wrong", timeout=5))
    assert "needs an API key" in _error(RemoteBackend(stub.url, timeout=5))


def test_server_error_quotes_its_message(stub: Stub) -> None:
    backend = RemoteBackend(stub.url, timeout=5)
    backend.open()
    stub.mode = "500"
    message = _error(backend, "stream")
    assert "HTTP 500" in message and message.endswith(": boom")


def test_unknown_model_lists_the_available_ones(stub: Stub) -> None:
    backend = RemoteBackend(stub.url, model="nope", timeout=5)
    backend.open()
    assert _error(backend, "stream") == f"model nope is not served at {stub.url}/v1; available: stub-model, other-model"


def test_garbage_answers(stub: Stub) -> None:
    stub.mode = "garbage"
    assert "not OpenAI-compatible" in _error(RemoteBackend(stub.url, timeout=5))
    backend = RemoteBackend(stub.url, model="stub-model", timeout=5)
    assert "not OpenAI-compatible" in _error(backend, "stream")


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    message = _error(RemoteBackend(f"http://127.0.0.1:{port}", timeout=5))
    assert message == f"cannot reach the model server at http://127.0.0.1:{port}/v1: connection refused; is it running?"


def test_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        backend = RemoteBackend(f"http://127.0.0.1:{silent.getsockname()[1]}", model="m", timeout=0.5)
        start = time.monotonic()
        assert "did not answer within 0.5 s" in _error(backend)
        assert "did not answer within 0.5 s" in _error(backend, "stream")
        assert time.monotonic() - start < 5


# -- interrupt ----------------------------------------------------------------------------------------------------


def test_closing_the_stream_drops_the_connection(stub: Stub) -> None:
    stub.mode = "slow"
    backend = RemoteBackend(stub.url, timeout=5)
    backend.open()
    reply = Reply()
    pieces = cast(Generator[str, None, None], backend.stream(QUESTION, GREEDY, reply))
    assert [next(pieces), next(pieces)] == ["piece0 ", "piece1 "]
    closed = time.monotonic()
    pieces.close()
    assert time.monotonic() - closed < 0.5
    assert reply.finish_reason == "interrupted" and reply.text == "piece0 piece1 "
    assert reply.timings.completion_tokens == 2 and reply.timings.total > 0
    assert stub.disconnected.wait(2), "the stub never noticed the client went away"
    assert stub.disconnected_at - closed < 1.0


# -- the real thing: llama-cpp-python's server with the embedded SmolLM2 ----------------------------------------


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    gguf = smollm2_path()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("llama-server") / "stderr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "512",
                "--n_threads",
                "2",
                # as our own runtime and llama.cpp's server run it; without it this build's greedy answer from the
                # 135M model tips from "Paris" to a French non-answer on a near tie
                "--flash_attn",
                "true",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.mark.slow
def test_real_llama_cpp_server_answers(llama_server: str) -> None:
    backend = RemoteBackend(llama_server, timeout=60)
    backend.open()
    assert backend.name.endswith(".gguf")  # llama_cpp.server lists the model by its path
    assert backend.context_length == 4096  # it does not tell its n_ctx
    reply = Reply()
    options = GenerationOptions(temperature=0.0, seed=0, max_tokens=16)
    pieces = list(backend.stream(QUESTION, options, reply))
    assert "Paris" in "".join(pieces) and reply.text == "".join(pieces)
    assert reply.finish_reason in ("stop", "length")
    assert reply.timings.completion_tokens > 0 and reply.timings.ttft > 0
    assert backend.count_tokens(QUESTION) > 8  # /extras/tokenize
    assert backend._tokenize == "llama-cpp-python"
    backend.close()


def test_cli_ask_through_the_remote_backend(llama_server: str) -> None:
    from click.testing import CliRunner

    from edge_assistant.cli import main

    result = CliRunner().invoke(
        main,
        [
            "ask",
            "--backend",
            "remote",
            "--base-url",
            llama_server,
            "--temperature",
            "0",
            "--json",
            "What is the capital of France?",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "Paris" in json.loads(result.stdout)["text"]


# -- secrets ----------------------------------------------------------------------------------------------------


def test_the_api_key_does_not_follow_a_redirect_to_another_host(stub: Stub, elsewhere: Stub) -> None:
    stub.mode, stub.redirect_to = "redirect", elsewhere.url
    backend = RemoteBackend(stub.url, api_key="secret", timeout=5)
    backend.open()
    assert backend.available == ["stub-model", "other-model"]  # the list came from the other host
    assert stub.requests[0][2]["authorization"] == "Bearer secret"
    assert elsewhere.requests and all(r[2]["authorization"] == "" for r in elsewhere.requests), "the key went along"


def test_a_key_over_plain_http_to_another_machine_is_warned_about_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise urllib.error.URLError(ConnectionRefusedError())

    for url, key in (("http://192.0.2.7:8080", "k"), ("http://192.0.2.7:8080", "k"), ("https://192.0.2.8", "k")):
        backend = RemoteBackend(url, api_key=key, timeout=1)
        monkeypatch.setattr(backend._opener, "open", refuse)
        with caplog.at_level("WARNING"), pytest.raises(BackendError):
            backend.open()
    for url in ("http://127.0.0.1:9", "http://localhost:9"):
        backend = RemoteBackend(url, api_key="k", timeout=1)
        monkeypatch.setattr(backend._opener, "open", refuse)
        with caplog.at_level("WARNING"), pytest.raises(BackendError):
            backend.open()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["the API key goes to 192.0.2.7:8080 over plain http: anyone on the way can read it; use https"]


@pytest.mark.parametrize("how", ["flag", "EDGE_ASSISTANT_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_refuses_the_remote_backend(stub: Stub, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    args = ["ask", "--backend", "remote", "--base-url", stub.url, "hi"]
    if how == "flag":
        args.insert(1, "--offline")
    else:
        monkeypatch.setenv(how, "1")
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert "--backend remote sends prompts over the network, and offline mode is on" in err
    assert stub.requests == []
