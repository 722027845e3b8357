"""A backend that talks to an OpenAI-compatible server (llama-server, Ollama, vLLM, llama_cpp.server) over HTTP."""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from ..errors import BackendError
from ..settings import LlmSettings
from .options import GenerationOptions, Message, Reply, Timings

log = logging.getLogger(__name__)
_MAX_MESSAGE = 200
"""Longest server message quoted in an error (characters)."""


class _MalformedAnswer(BackendError):
    """The server's answer is not the JSON or event stream the API promises."""


class _StatusError(Exception):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def normalize_base_url(url: str) -> str:
    """`host:port`, `http://host:port/`, `.../v1/` → `http://host:port/v1`."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendError(f"not an http(s) URL for a model server: {url}")
    return url if url.endswith("/v1") else url + "/v1"


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _error_message(body: bytes) -> str:
    """The server's own error text: OpenAI `{"error": {"message"}}`, `{"error": "..."}`, FastAPI `{"detail"}`."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return _one_line(text)
    if isinstance(data, dict):
        for key in ("error", "detail", "message"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message", value)
            if value:
                return _one_line(value if isinstance(value, str) else json.dumps(value))
    return _one_line(text)


def _obj(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class _KeyStaysHome(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but the API key goes only where it was meant to (the same host; http to https there)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            (scheme, host, port), (to_scheme, to_host, to_port) = _origin(req.full_url), _origin(newurl)
            upgrade = scheme == "http" and to_scheme == "https" and port == 80 and to_port == 443
            if host != to_host or not ((scheme, port) == (to_scheme, to_port) or upgrade):
                new.remove_header("Authorization")
                log.info("redirected to %s: the API key is not sent there", to_host)
        return new


_warned: set[str] = set()
"""Hosts already warned about a key sent in clear text."""


def _context_from_metadata(entry: dict[str, Any]) -> int | None:
    """Context length from a /models entry: llama-server `meta`, vLLM `max_model_len`, or common spellings."""
    meta = _obj(entry.get("meta"))
    for value in (
        meta.get("n_ctx"),
        entry.get("n_ctx"),
        entry.get("max_model_len"),
        entry.get("context_length"),
        entry.get("context_window"),
        meta.get("n_ctx_train"),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return None


class RemoteBackend:
    """A chat model served over the OpenAI chat-completions API; the server holds the weights and the prompt cache."""

    def __init__(
        self, base_url: str, model: str | None = None, api_key: str | None = None, timeout: float = 60.0
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        """Endpoint root ending in /v1."""
        self.model = model
        """Model id sent with each request; picked from the server's list in `open()` when None."""
        self.api_key = api_key
        self.timeout = timeout
        """Seconds to wait for a connection or for the next piece of an answer."""
        self.name = model or "remote"
        self.context_length = LlmSettings.ctx_cap
        self.available: list[str] = []
        """Model ids the server listed at `open()`."""
        self._tokenize: str | None = None
        """Which tokenize endpoint works: "llama-server", "llama-cpp-python", "none"; None until tried."""
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        handlers: list[urllib.request.BaseHandler] = [_KeyStaysHome()]
        if _is_loopback(host):
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    @property
    def server_root(self) -> str:
        """The base URL without /v1, where llama.cpp servers put their own endpoints."""
        return self.base_url[: -len("/v1")]

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Check the server answers, pick the model and learn its context length."""
        parts = urllib.parse.urlsplit(self.base_url)
        host = parts.hostname or ""
        if self.api_key and parts.scheme == "http" and not _is_loopback(host) and host not in _warned:
            _warned.add(host)
            log.warning(
                "the API key goes to %s over plain http: anyone on the way can read it; use https", parts.netloc
            )
        try:
            data = self._get_json(self.base_url + "/models")
        except _StatusError as e:
            raise self._status_error(e, "/models") from None
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(isinstance(x, dict) and "id" in x for x in entries):
            raise BackendError(f"the server at {self.base_url} sent a model list that is not OpenAI-compatible")
        self.available = [str(x["id"]) for x in entries]
        if self.model is None:
            if not self.available:
                raise BackendError(f"the server at {self.base_url} lists no models")
            self.model = self.available[0]
        elif self.model not in self.available:
            log.warning("model %s is not in the server's list (%s); trying it anyway", self.model, self.available)
        self.name = self.model
        entry = next((x for x in entries if x["id"] == self.model), None) or {}
        self.context_length = self._server_context(entry) or LlmSettings.ctx_cap  # the server does not say
        log.info("remote model %s at %s, context %d", self.name, self.base_url, self.context_length)

    def close(self) -> None:
        """Nothing to free: each request opens and closes its own connection."""

    def warm(self, prefix: Sequence[Message]) -> float:
        """The server keeps its own prompt cache (llama-server reuses the common prefix); nothing to do here."""
        return 0.0

    # -- tokens ------------------------------------------------------------------------------------------------

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens of the messages by the server's tokenizer if it offers one, else an estimate; +4 per message."""
        text = "\n".join(f"{m.role}: {m.content}" for m in messages)
        overhead = 4 * len(messages)
        endpoints = [
            ("llama-server", self.server_root + "/tokenize", {"content": text}),
            ("llama-cpp-python", self.server_root + "/extras/tokenize", {"input": text}),
        ]
        for kind, url, payload in endpoints:
            if self._tokenize not in (None, kind):
                continue
            if self.model is not None:
                payload["model"] = self.model
            try:
                tokens = self._post_json(url, payload).get("tokens")
            except _StatusError as e:
                log.debug("no %s tokenize endpoint (HTTP %d)", kind, e.status)
                continue
            except _MalformedAnswer:
                log.debug("the %s tokenize endpoint sent something else", kind)
                continue
            if isinstance(tokens, list):
                self._tokenize = kind
                return len(tokens) + overhead
        self._tokenize = "none"
        return len(text) // 4 + overhead

    # -- generation --------------------------------------------------------------------------------------------

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions, reply: Reply
    ) -> Generator[str, None, None]:
        """POST a streamed chat completion and yield its text pieces; closing the iterator drops the connection."""
        payload: dict[str, Any] = {
            "model": self.model or self.name,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": options.max_tokens,
        }
        # Sampling left unset is the server's (its model's) default.
        for key, value in (("temperature", options.temperature), ("top_p", options.top_p)):
            if value is not None:
                payload[key] = value
        if options.seed is not None:
            payload["seed"] = options.seed
        if options.stop:
            payload["stop"] = list(options.stop)
        start = time.perf_counter()
        ttft = 0.0
        chunks = 0
        usage: dict[str, Any] = {}
        finish: str | None = None
        done = False
        try:
            response = self._send("POST", self.base_url + "/chat/completions", payload)
        except _StatusError as e:
            raise self._status_error(e, "/chat/completions") from None
        try:
            for data in self._events(response):
                if data == "[DONE]":
                    done = True
                    break
                event = self._parse_event(data)
                if isinstance(event.get("usage"), dict):
                    usage = event["usage"]
                choices = event.get("choices")
                choice = _obj(choices[0]) if isinstance(choices, list) and choices else {}
                content = _obj(choice.get("delta")).get("content")
                if isinstance(content, str) and content:
                    if chunks == 0:
                        ttft = time.perf_counter() - start
                    chunks += 1
                    reply.text += content
                    yield content
                if choice.get("finish_reason"):
                    finish = str(choice["finish_reason"])
            if not done and finish is None:
                raise BackendError(f"the model server at {self.base_url} closed the answer stream early")
            done = True
        finally:
            response.close()
            reply.finish_reason = ("length" if finish == "length" else "stop") if done else "interrupted"
            cached = _obj(usage.get("prompt_tokens_details")).get("cached_tokens")
            reply.timings = Timings(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                cached_tokens=int(cached or 0),
                completion_tokens=int(usage.get("completion_tokens") or chunks),
                ttft=ttft,
                total=time.perf_counter() - start,
            )
            log.debug("remote answer: %s, %s", reply.finish_reason, reply.timings)

    # -- HTTP plumbing -----------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _send(self, method: str, url: str, payload: dict[str, Any] | None = None) -> http.client.HTTPResponse:
        """Open a request; HTTP error statuses raise `_StatusError`, network failures `BackendError`."""
        body = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(url, data=body, headers=self._headers(), method=method)
        log.debug("%s %s", method, url)
        try:
            response: http.client.HTTPResponse = self._opener.open(request, timeout=self.timeout)
            return response
        except urllib.error.HTTPError as e:
            with e:
                message = _error_message(e.read())
            raise _StatusError(e.code, message) from None
        except urllib.error.URLError as e:
            raise self._network_error(e.reason) from None
        except (OSError, http.client.HTTPException) as e:
            raise self._network_error(e) from None

    def _get_json(self, url: str) -> Any:
        with self._send("GET", url) as response:
            return self._read_json(response)

    def _post_json(self, url: str, payload: dict[str, Any]) -> Any:
        with self._send("POST", url, payload) as response:
            data = self._read_json(response)
        if not isinstance(data, dict):
            raise self._malformed()
        return data

    def _read_json(self, response: http.client.HTTPResponse) -> Any:
        try:
            return json.loads(response.read())
        except ValueError:
            raise self._malformed() from None
        except (OSError, http.client.HTTPException) as e:
            raise self._network_error(e) from None

    def _events(self, response: http.client.HTTPResponse) -> Iterator[str]:
        """The `data:` payloads of a Server-Sent Events stream."""
        while True:
            try:
                raw = response.readline()
            except (OSError, http.client.HTTPException) as e:
                raise self._network_error(e) from None
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("data:"):
                yield line[5:].removeprefix(" ")
            elif line and not line.startswith((":", "event:", "id:", "retry:")):
                raise self._malformed()

    def _parse_event(self, data: str) -> dict[str, Any]:
        try:
            event = json.loads(data)
        except ValueError:
            raise self._malformed() from None
        if not isinstance(event, dict):
            raise self._malformed()
        if event.get("error"):
            raise BackendError(f"the model server at {self.base_url} failed: {_error_message(data.encode())}")
        return event

    def _server_context(self, entry: dict[str, Any]) -> int | None:
        """llama-server's running context (/props) beats the training context its model list reports."""
        if isinstance(entry.get("meta"), dict):
            try:
                props = self._get_json(self.server_root + "/props")
            except (_StatusError, BackendError) as e:
                log.debug("no /props: %s", e)
            else:
                n_ctx = _obj(_obj(props).get("default_generation_settings")).get("n_ctx")
                if isinstance(n_ctx, int) and n_ctx > 0:
                    return n_ctx
        return _context_from_metadata(entry)

    # -- errors ------------------------------------------------------------------------------------------------

    def _malformed(self) -> BackendError:
        return _MalformedAnswer(f"the server at {self.base_url} sent an answer that is not OpenAI-compatible JSON")

    def _network_error(self, reason: object) -> BackendError:
        where = f"the model server at {self.base_url}"
        if isinstance(reason, TimeoutError):
            return BackendError(f"{where} did not answer within {self.timeout:g} s")
        if isinstance(reason, ConnectionRefusedError):
            return BackendError(f"cannot reach {where}: connection refused; is it running?")
        if isinstance(reason, socket.gaierror):
            return BackendError(f"cannot reach {where}: unknown host")
        if isinstance(reason, (ConnectionError, http.client.HTTPException)):
            return BackendError(f"the connection to {where} broke: {_one_line(str(reason)) or type(reason).__name__}")
        return BackendError(f"cannot reach {where}: {_one_line(str(reason))}")

    def _status_error(self, e: _StatusError, path: str) -> BackendError:
        where = f"the model server at {self.base_url}"
        if e.status in (401, 403):
            if not self.api_key:
                return BackendError(f"{where} needs an API key (HTTP {e.status})")
            return BackendError(f"{where} refused the API key (HTTP {e.status})")
        if e.status == 404 and path == "/chat/completions" and self.model not in self.available:
            available = ", ".join(self.available) or "none"
            return BackendError(f"model {self.model} is not served at {self.base_url}; available: {available}")
        if e.status == 404:
            return BackendError(f"{where} has no {path} endpoint (HTTP 404); is it OpenAI-compatible?")
        if e.status >= 500:
            return BackendError(f"{where} failed (HTTP {e.status}): {e.message}")
        return BackendError(f"{where} rejected the request (HTTP {e.status}): {e.message}")
