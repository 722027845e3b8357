"""The OpenAI-compatible HTTP API (FastAPI): models, chat completions (streamed or not), transcriptions of
uploaded recordings, and speech. The fields that matter here are honoured, the others ignored as OpenAI clients
expect; errors come back in OpenAI's shape (`{"error": {"message", "type", "code"}}`)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..audio.chunk import AudioChunk
from ..audio.sources import FileSource
from ..errors import (
    AudioError,
    BusyError,
    ContextOverflowError,
    EdgeError,
    NotInstalledError,
    TooLargeError,
    UsageError,
    first_line,
)
from ..llm.options import GenerationOptions, Reply
from ..llm.options import Message as ChatTurn
from ..settings import ServeSettings
from ..stt.recognizer import Recognizer
from ..stt.whisper import WhisperRecognizer
from .asr import Recognized
from .engines import Engines
from .lanes import Turn
from .threads import iterate_in_thread
from .transcripts import MEDIA, as_json, as_srt, as_text, as_verbose, as_vtt, check_format
from .voice import at_rate, clean_text, pcm, sentences, wav_bytes

log = logging.getLogger(__name__)
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse", "marin", "cedar"}
)
"""OpenAI's own voice names: a client that sends one gets this server's default voice."""
PCM_RATE = 24000
"""Rate of `response_format: pcm` (what OpenAI sends)."""
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


# -- errors -----------------------------------------------------------------------------------------------
def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)


def error_response(exc: BaseException) -> JSONResponse:
    """An exception as OpenAI's error answer with a fitting status."""
    if isinstance(exc, BusyError):
        return _error(429, str(exc), "server_busy", "busy")
    if isinstance(exc, TooLargeError):
        return _error(413, str(exc), "invalid_request_error", "too_large")
    if isinstance(exc, ContextOverflowError):
        return _error(400, str(exc), "invalid_request_error", "context_length_exceeded")
    if isinstance(exc, (UsageError, NotInstalledError)):
        return _error(400, str(exc), "invalid_request_error")
    if isinstance(exc, EdgeError):
        return _error(500, str(exc), "server_error")
    log.error("request failed", exc_info=exc)
    return _error(500, f"internal error: {first_line(exc)}", "server_error")


class BodyLimit:
    """Refuse request bodies over `max_bytes` (by Content-Length at once, else as they stream in): 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(TooLargeError(f"request body larger than {self.max_bytes} bytes"))
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await too_large(scope, receive, send)
            return
        received = 0
        started = refused = False

        async def limited() -> Message:
            """The body; past the limit the client gets its 413 and the app sees a client that went away."""
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await too_large(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 was the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited, tracked)


class TurnResponse(StreamingResponse):
    """A streamed answer that stops its work and gives its model's turn back however the stream ends (done, the
    client gone, never started): the model is free only once the worker has stopped using it."""

    def __init__(self, content: AsyncGenerator[str | bytes, None], turn: Turn, media_type: str) -> None:
        super().__init__(content, media_type=media_type)
        self.content = content
        self.turn = turn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self.content.aclose()
            finally:
                self.turn.release()


# -- requests ---------------------------------------------------------------------------------------------
class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields of a chat completion this server honours (others are ignored)."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    repeat_penalty: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1)

    def turns(self) -> list[ChatTurn]:
        out = []
        for m in self.messages:
            role = ROLES.get(m.role)
            if role is None:
                raise UsageError(f"message role {m.role!r} is not supported; use system, user or assistant")
            out.append(ChatTurn(role, _text_of(m.content)))
        return out

    def options(self) -> GenerationOptions:
        base = GenerationOptions()
        temperature = base.temperature if self.temperature is None else self.temperature
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        greedy = temperature == 0
        return GenerationOptions(
            temperature=temperature,
            top_p=base.top_p if self.top_p is None else self.top_p,
            top_k=1 if greedy else (base.top_k if self.top_k is None else self.top_k),
            repeat_penalty=base.repeat_penalty if self.repeat_penalty is None else self.repeat_penalty,
            max_tokens=self.max_completion_tokens or self.max_tokens or base.max_tokens,
            seed=self.seed if self.seed is not None else (0 if greedy else None),
            stop=tuple(s for s in stop if s),
        )


def _text_of(content: str | list[dict[str, Any]] | None) -> str:
    """A message's text: a string, or the text parts of a list of parts."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise UsageError(f"message content of type {part.get('type')!r} is not supported; send text")
        texts.append(part["text"])
    return "\n".join(texts)


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    input: str
    voice: str | dict[str, Any] | None = None
    response_format: str | None = None
    speed: float | None = None


# -- the app ----------------------------------------------------------------------------------------------
def create_app(engines: Engines, settings: ServeSettings) -> FastAPI:
    """The HTTP API over `engines` (opened by the caller)."""
    app = FastAPI(title="edge-assistant", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, max_bytes=int(settings.max_body_mb * 2**20))
    created = int(time.time())

    async def authorized(request: Request) -> None:
        if not settings.api_key:
            return
        given = request.headers.get("authorization", "")
        scheme, _, key = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(), settings.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key (send Authorization: Bearer KEY)")

    @app.exception_handler(EdgeError)
    async def edge_error(request: Request, exc: EdgeError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        first = problems[0] if problems else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))
        return _error(400, message, "invalid_request_error")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = "invalid_api_key" if exc.status_code == 401 else None
        return _error(exc.status_code, str(exc.detail), "invalid_request_error", kind)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    guarded = [Depends(authorized)]

    @app.get("/v1/models", dependencies=guarded)
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_entry(engines, o, created) for o in engines.offers()]}

    @app.get("/v1/models/{model_id:path}", dependencies=guarded)
    async def model(model_id: str) -> dict[str, Any]:
        for offer in engines.offers():
            if offer.id == model_id:
                return _model_entry(engines, offer, created)
        raise HTTPException(404, f"model {model_id!r} is not served here")

    @app.post("/v1/chat/completions", dependencies=guarded)
    async def chat(body: ChatRequest) -> Response:
        messages, options = body.turns(), body.options()
        slot = engines.chat
        turn = slot.lane.admit()
        reply = Reply()
        ident = f"chatcmpl-{uuid.uuid4().hex}"
        name = slot.part.name
        if not body.stream:
            async with turn:
                await asyncio.to_thread(slot.lane.holding(lambda: "".join(slot.part.stream(messages, options, reply))))
            return JSONResponse(_completion(ident, name, reply))
        usage = body.stream_options is not None and body.stream_options.include_usage
        pieces = iterate_in_thread(lambda: slot.part.stream(messages, options, reply), slot.lane.model)
        return TurnResponse(_sse(ident, name, turn, pieces, reply, usage), turn, "text/event-stream")

    @app.post("/v1/audio/transcriptions", dependencies=guarded)
    async def transcriptions(
        file: Annotated[UploadFile, File()],
        model: Annotated[str | None, Form()] = None,
        language: Annotated[str | None, Form()] = None,
        response_format: Annotated[str | None, Form()] = None,
        granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
    ) -> Response:
        fmt = check_format(response_format)
        wanted = model if model in {o.id for o in engines.offers() if o.kind == "stt"} else None
        slot = await engines.recognizer(language, wanted)
        words = fmt == "verbose_json" and "word" in (granularities or [])
        with tempfile.TemporaryDirectory(prefix="edge-assistant-upload-") as folder:
            path = Path(folder) / "upload"
            await asyncio.to_thread(_save, file, path)
            async with slot.lane.admit():
                done = await asyncio.to_thread(
                    slot.lane.holding(
                        lambda: _recognize_file(slot.part, path, settings.max_audio_seconds, words, language)
                    )
                )
        log.info("transcribed %.1f s of audio: %s", done.seconds, done.text[:80])
        if fmt == "json":
            return JSONResponse(as_json(done))
        if fmt == "verbose_json":
            return JSONResponse(as_verbose(done, words))
        text = {"text": as_text, "srt": as_srt, "vtt": as_vtt}[fmt](done)
        return PlainTextResponse(text, media_type=MEDIA[fmt])

    @app.post("/v1/audio/speech", dependencies=guarded)
    async def speech(body: SpeechRequest) -> Response:
        text = clean_text(body.input, settings.max_text_chars)
        if not text:
            raise UsageError("input is empty: nothing to say")
        fmt = (body.response_format or "wav").lower()
        if fmt not in ("wav", "pcm"):
            raise UsageError(f"response_format {fmt!r} is not supported here; use wav or pcm")
        voice = body.voice.get("id") if isinstance(body.voice, dict) else body.voice
        slot = await engines.speaker(_voice_name(engines, voice), None)
        turn = slot.lane.admit()
        if fmt == "wav":
            async with turn:  # a whole file: its first sentence gains nothing from being cut at a comma
                pieces = await asyncio.to_thread(slot.lane.holding(lambda: list(sentences(slot.part, text, 0))))
            return Response(wav_bytes(pieces), media_type="audio/wav")
        chunks = iterate_in_thread(lambda: sentences(slot.part, text), slot.lane.model)
        return TurnResponse(_pcm_stream(turn, chunks), turn, "audio/pcm")

    return app


def _model_entry(engines: Engines, offer: Any, created: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": offer.id,
        "object": "model",
        "created": created,
        "owned_by": "edge-assistant",
        "kind": offer.kind,
        "engine": offer.engine,
    }
    if offer.kind == "llm" and engines.backend is not None:
        entry["context_length"] = engines.backend.context_length
    return entry


def _voice_name(engines: Engines, voice: Any) -> str | None:
    """The installed voice a request names; None (the default voice) for OpenAI's own voice names."""
    if voice is None or (isinstance(voice, str) and voice.lower() in OPENAI_VOICES):
        return None
    if not isinstance(voice, str):
        raise UsageError("voice must be a voice id")
    if voice not in {o.id for o in engines.offers() if o.kind == "tts"} and not voice.lower().endswith(".onnx"):
        installed = ", ".join(o.id for o in engines.offers() if o.kind == "tts") or "none"
        raise UsageError(f"unknown voice {voice!r}; installed voices: {installed}")
    return voice


def _completion(ident: str, model: str, reply: Reply) -> dict[str, Any]:
    t = reply.timings
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": "length" if reply.finish_reason == "length" else "stop",
            }
        ],
        "usage": _usage(reply),
        "timings": {"ttft_s": round(t.ttft, 4), "total_s": round(t.total, 4)},
    }


def _usage(reply: Reply) -> dict[str, Any]:
    t = reply.timings
    return {
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "total_tokens": t.prompt_tokens + t.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": t.cached_tokens},
    }


def _chunk(ident: str, model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    event = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


async def _sse(
    ident: str, model: str, turn: Turn, pieces: AsyncGenerator[str, None], reply: Reply, usage: bool
) -> AsyncGenerator[str, None]:
    """Server-sent events of a streamed chat completion, in OpenAI's shape, ending with [DONE]."""
    try:
        async with turn, contextlib.aclosing(pieces):
            yield _chunk(ident, model, {"role": "assistant", "content": ""})
            async for piece in pieces:
                yield _chunk(ident, model, {"content": piece})
        yield _chunk(ident, model, {}, "length" if reply.finish_reason == "length" else "stop")
        if usage:
            event = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
            yield f"data: {json.dumps({**event, 'choices': [], 'usage': _usage(reply)})}\n\n"
    except Exception as exc:  # the headers are gone: the error travels as an event
        body = json.loads(bytes(error_response(exc).body))
        yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"


async def _pcm_stream(turn: Turn, pieces: AsyncGenerator[Any, None]) -> AsyncGenerator[bytes, None]:
    """Raw 16-bit PCM at 24 kHz, sentence by sentence as each is ready."""
    async with turn, contextlib.aclosing(pieces):
        async for speech in pieces:
            yield pcm(at_rate(speech, PCM_RATE))


def _save(upload: UploadFile, path: Path) -> None:
    with path.open("wb") as out:
        while data := upload.file.read(1 << 20):
            out.write(data)


def _recognize_file(
    recognizer: Recognizer, path: Path, max_seconds: float, words: bool, language: str | None
) -> Recognized:
    """The whole recording recognised (no longer than `max_seconds`), word times when asked for."""
    source = FileSource(path)
    try:
        source.check()
    except (AudioError, UsageError):
        raise UsageError("the uploaded file is not audio this server reads: send WAV, FLAC or OGG") from None
    seconds = 0.0

    def capped() -> Iterator[AudioChunk]:
        nonlocal seconds
        for chunk in source.chunks():
            seconds = chunk.end
            if seconds > max_seconds:
                raise TooLargeError(f"audio longer than {max_seconds:g} s; send a shorter recording")
            yield chunk

    with _word_times(recognizer, words):
        finals = tuple(u for u in recognizer.stream(capped()) if u.final)
    found = next((u.language for u in finals if u.language), None)
    return Recognized(finals, seconds, found or language)


class _word_times:
    """Whisper word times for one request (the recognizer is this request's alone while its turn lasts)."""

    def __init__(self, recognizer: Recognizer, on: bool) -> None:
        self.whisper = recognizer if isinstance(recognizer, WhisperRecognizer) else None
        self.on = on
        self.before = False

    def __enter__(self) -> None:
        if self.whisper is not None:
            self.before, self.whisper.word_timestamps = self.whisper.word_timestamps, self.on

    def __exit__(self, *exc: object) -> None:
        if self.whisper is not None:
            self.whisper.word_timestamps = self.before
