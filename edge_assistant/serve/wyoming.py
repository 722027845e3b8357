"""The Wyoming face: Home Assistant's speech to text (asr), text to speech (tts) and conversation agent (handle),
on the `wyoming` package's events, one handler per connection.

asr: `transcribe`? `audio-start` `audio-chunk`* `audio-stop` -> `transcript-start` `transcript-chunk`* (while the
audio arrives) `transcript` `transcript-stop`. tts: `synthesize` -> `audio-start` `audio-chunk`* `audio-stop`
(sentence by sentence as each is ready); streaming: `synthesize-start` `synthesize-chunk`* `synthesize-stop` ->
one audio-start..audio-stop per sentence, then `synthesize-stopped`. handle: `transcript` -> `handled-start`
`handled-chunk`* `handled` `handled-stop`. A malformed event gets an `error` event and the connection goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.handle import Handled, HandledChunk, HandledStart, HandledStop
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    HandleModel,
    HandleProgram,
    Info,
    TtsProgram,
    TtsVoice,
)
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from .. import __version__
from ..errors import EdgeError, UsageError, first_line
from ..llm.options import Reply
from ..settings import ServeSettings
from ..text import SentenceSplitter
from ..tts.speaker import Speaker
from .asr import AsrSession, Recognized
from .chats import Chats
from .engines import Engines, Slot
from .lanes import Turn
from .pcm import PcmFormat
from .threads import iterate_in_thread
from .voice import EAGER_WORDS, clean_text, pcm_chunks, sentences

log = logging.getLogger(__name__)
LINE_LIMIT = 64 * 1024
"""Longest header line of an event (JSON), in bytes."""
ATTRIBUTION = Attribution(name="edge-assistant", url="https://pypi.org/project/edge-assistant/")


class BadEvent(Exception):
    """An event that cannot be read; `fatal` when the stream cannot be followed after it."""

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


async def read_event(reader: asyncio.StreamReader, max_bytes: int) -> Event | None:
    """The next event (None at the end of the stream), with its data and payload capped at `max_bytes`."""
    try:
        line = await reader.readline()
    except ValueError:
        raise BadEvent(f"event header longer than {LINE_LIMIT} bytes", fatal=True) from None
    if not line:
        return None
    if not line.endswith(b"\n"):
        return None  # the connection closed mid-line
    try:
        header = json.loads(line)
    except ValueError:
        raise BadEvent("malformed event: the header line is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise BadEvent("malformed event: no type")
    data = header.get("data") or {}
    lengths = [header.get("data_length") or 0, header.get("payload_length") or 0]
    if not all(isinstance(n, int) and 0 <= n <= max_bytes for n in lengths):
        raise BadEvent(f"event data or payload larger than {max_bytes} bytes (or not a length)", fatal=True)
    try:
        extra = await reader.readexactly(lengths[0]) if lengths[0] else b""
        payload = await reader.readexactly(lengths[1]) if lengths[1] else None
    except asyncio.IncompleteReadError:
        return None
    if extra:
        try:
            more = json.loads(extra)
        except ValueError:
            raise BadEvent("malformed event: its data is not JSON") from None
        if not isinstance(more, dict) or not isinstance(data, dict):
            raise BadEvent("malformed event: its data is not an object")
        data = {**data, **more}
    if not isinstance(data, dict):
        raise BadEvent("malformed event: its data is not an object")
    return Event(type=header["type"], data=data, payload=payload)


def describe(engines: Engines) -> Info:
    """What is installed, as Home Assistant reads it."""
    offers = engines.offers()

    def models(kind: str, model: Any) -> list[Any]:
        """The offers of one kind as Wyoming model records of `model`'s class."""
        return [
            model(
                name=o.id,
                attribution=Attribution(name=f"edge-assistant ({o.engine})", url=ATTRIBUTION.url),
                installed=True,
                description=o.description,
                version=None,
                languages=list(o.languages),
            )
            for o in offers
            if o.kind == kind
        ]

    asr_models, voices, handle_models = models("stt", AsrModel), models("tts", TtsVoice), models("llm", HandleModel)
    return Info(
        asr=[
            AsrProgram(
                name="edge-assistant-asr",
                attribution=ATTRIBUTION,
                installed=True,
                description="speech to text (vosk, faster-whisper), recognised while the audio arrives",
                version=__version__,
                models=asr_models,
                supports_transcript_streaming=True,
            )
        ],
        tts=[
            TtsProgram(
                name="edge-assistant-tts",
                attribution=ATTRIBUTION,
                installed=True,
                description="text to speech (Piper, espeak-ng), sentence by sentence",
                version=__version__,
                voices=voices,
                supports_synthesize_streaming=True,
            )
        ],
        handle=[
            HandleProgram(
                name="edge-assistant-handle",
                attribution=ATTRIBUTION,
                installed=True,
                description="answers from the local language model",
                version=__version__,
                models=handle_models,
                supports_handled_streaming=True,
            )
        ],
    )


@dataclass
class _Listening:
    """An asr request in progress."""

    session: AsrSession
    task: asyncio.Task[Recognized]
    language: str | None


@dataclass
class _Streaming:
    """A streamed synthesis in progress."""

    slot: Slot[Speaker]
    splitter: SentenceSplitter
    chars: int = 0
    spoken: bool = False
    """A sentence was spoken (only the first is cut at a comma)."""


class WyomingHandler(AsyncEventHandler):
    """One connection: requests one after another, each answered or refused with an `error` event."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        engines: Engines,
        chats: Chats,
        settings: ServeSettings,
    ) -> None:
        super().__init__(reader, writer)
        self.engines = engines
        self.chats = chats
        self.settings = settings
        self.in_request = False
        """A request is being answered: a graceful stop waits for it."""
        self.closing = False
        """Stop after the request in progress."""
        self._transcribe: Transcribe | None = None
        self._listening: _Listening | None = None
        self._skip_audio = False
        self._streaming: _Streaming | None = None
        self._stream_failed = False

    # -- the connection ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Read events until the client leaves, a fatal error, or a stop (after the request in progress)."""
        self._is_running = True
        try:
            while self._is_running and not (self.closing and not self.in_request):
                waiting = self.settings.idle if self.in_request else None
                try:
                    event = await asyncio.wait_for(read_event(self.reader, self.settings.max_event_bytes), waiting)
                except TimeoutError:
                    message = f"no event for {self.settings.idle:g} s in the middle of a request: dropped"
                    log.info("wyoming: %s", message)
                    await self.write_event(Error(text=message, code="timeout").event())
                    break
                except BadEvent as exc:
                    log.info("wyoming: %s", exc)
                    await self.write_event(Error(text=str(exc), code="bad-event").event())
                    if exc.fatal:
                        break
                    continue
                if event is None or not await self.handle_event(event):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            log.debug("wyoming: client went away")
        finally:
            await self.disconnect()
            self.writer.close()

    async def disconnect(self) -> None:
        if self._listening is not None:
            self._listening.session.cancel()
            self._listening.task.cancel()
            self._listening = None
        self.in_request = False

    async def write_event(self, event: Event) -> None:
        await async_write_event(event, self.writer)

    async def handle_event(self, event: Event) -> bool:
        """Answer one event; errors become `error` events and the connection goes on."""
        try:
            await self._dispatch(event)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except EdgeError as exc:
            await self._fail(event, str(exc), _code(exc))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            await self._fail(event, f"bad {event.type} event: {first_line(exc)}", "bad-event")
        except Exception as exc:  # a failure in a model: answer it, keep serving
            log.exception("wyoming %s failed", event.type)
            await self._fail(event, f"{event.type} failed: {first_line(exc)}", "failed")
        return True

    async def _fail(self, event: Event, message: str, code: str) -> None:
        log.info("wyoming %s: %s", event.type, message)
        self.in_request = self._streaming is not None or self._listening is not None
        await self.write_event(Error(text=message, code=code).event())

    async def _dispatch(self, event: Event) -> None:
        kind = event.type
        if Describe.is_type(kind):
            await self.write_event(describe(self.engines).event())  # built when asked, not per connection
        elif Ping.is_type(kind):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif Transcribe.is_type(kind):
            self._transcribe = Transcribe.from_event(event)
        elif AudioStart.is_type(kind):
            start = AudioStart.from_event(event)
            await self._start_listening(PcmFormat(start.rate, start.width, start.channels))
        elif AudioChunk.is_type(kind):
            await self._hear(AudioChunk.from_event(event))
        elif AudioStop.is_type(kind):
            await self._stop_listening()
        elif Synthesize.is_type(kind):
            if self._streaming is None and not self._stream_failed:
                await self._synthesize(Synthesize.from_event(event))
        elif SynthesizeStart.is_type(kind):
            await self._start_stream(SynthesizeStart.from_event(event))
        elif SynthesizeChunk.is_type(kind):
            await self._stream_text(SynthesizeChunk.from_event(event).text)
        elif SynthesizeStop.is_type(kind):
            await self._stop_stream()
        elif Transcript.is_type(kind):
            await self._handle(Transcript.from_event(event))
        else:
            log.debug("wyoming: ignoring %s", kind)  # the protocol drops events it does not know

    # -- asr -----------------------------------------------------------------------------------------
    async def _start_listening(self, fmt: PcmFormat) -> None:
        if self._listening is not None:
            self._listening.session.cancel()
            self._listening = None
        self._skip_audio = True  # until the request is admitted
        self.in_request = True
        request = self._transcribe or Transcribe()
        self._transcribe = None
        # a name that is not an installed speech model (a program's name, another service's model) is no choice
        installed = {o.id for o in self.engines.offers() if o.kind == "stt"}
        slot = await self.engines.recognizer(request.language, request.name if request.name in installed else None)
        session = AsrSession(slot.part, fmt, self.settings.max_audio_seconds)
        turn = slot.lane.admit()
        task = asyncio.create_task(_in_turn(turn, lambda: asyncio.to_thread(slot.lane.holding(session.run))))
        self._listening = _Listening(session, task, request.language)
        self._skip_audio = False
        await self.write_event(TranscriptStart(language=request.language).event())

    async def _hear(self, chunk: AudioChunk) -> None:
        if self._skip_audio:
            return
        if self._listening is None:  # audio without audio-start: start with the chunk's format
            await self._start_listening(PcmFormat(chunk.rate, chunk.width, chunk.channels))
        assert self._listening is not None
        try:
            self._listening.session.feed(chunk.audio, PcmFormat(chunk.rate, chunk.width, chunk.channels))
        except EdgeError:
            self._listening.task.cancel()
            self._listening = None
            self._skip_audio = True
            raise
        for text in self._listening.session.take_updates():
            await self.write_event(TranscriptChunk(text=text).event())

    async def _stop_listening(self) -> None:
        if self._listening is None:
            if not self._skip_audio:
                raise UsageError("audio-stop without audio")
            self._skip_audio = False
            self.in_request = False
            return
        listening, self._listening = self._listening, None
        listening.session.end()
        try:
            result = await listening.task
        finally:
            self.in_request = False
        for text in listening.session.take_updates():
            await self.write_event(TranscriptChunk(text=text).event())
        language = result.language or listening.language
        log.info("wyoming transcript (%.1f s of audio): %s", result.seconds, result.text)
        await self.write_event(Transcript(text=result.text, language=language).event())
        await self.write_event(TranscriptStop().event())

    # -- tts -----------------------------------------------------------------------------------------
    async def _voice(self, voice: Any) -> Slot[Speaker]:
        name = getattr(voice, "name", None)
        language = getattr(voice, "language", None)
        return await self.engines.speaker(name, language)

    async def _synthesize(self, request: Synthesize) -> None:
        text = clean_text(request.text, self.settings.max_text_chars)
        self.in_request = True
        try:
            slot = await self._voice(request.voice)
            started = False
            async with slot.lane.admit():
                async for speech in iterate_in_thread(lambda: sentences(slot.part, text), slot.lane.model):
                    if not started:
                        await self.write_event(AudioStart(rate=speech.rate, width=2, channels=1).event())
                        started = True
                    await self._send_audio(speech.rate, speech)
            if not started:
                await self.write_event(AudioStart(rate=22050, width=2, channels=1).event())
            await self.write_event(AudioStop().event())
        finally:
            self.in_request = False

    async def _send_audio(self, rate: int, speech: Any) -> None:
        for data in pcm_chunks(speech):
            await self.write_event(AudioChunk(rate=rate, width=2, channels=1, audio=data).event())

    async def _start_stream(self, request: SynthesizeStart) -> None:
        self.in_request = True
        self._streaming = None
        self._stream_failed = True  # until the voice is ready
        slot = await self._voice(request.voice)
        self._streaming = _Streaming(slot, SentenceSplitter())
        self._stream_failed = False

    async def _stream_text(self, text: str) -> None:
        if self._streaming is None:
            if self._stream_failed:
                return
            raise UsageError("synthesize-chunk without synthesize-start")
        stream = self._streaming
        stream.chars += len(text)
        if stream.chars > self.settings.max_text_chars:
            self._streaming, self._stream_failed = None, True
            raise UsageError(f"streamed text longer than {self.settings.max_text_chars} characters")
        for sentence in stream.splitter.feed(text):
            await self._speak_sentence(stream, sentence)

    async def _stop_stream(self) -> None:
        stream, self._streaming = self._streaming, None
        failed, self._stream_failed = self._stream_failed, False
        try:
            if stream is not None:
                for sentence in stream.splitter.flush():
                    await self._speak_sentence(stream, sentence)
            elif not failed:
                raise UsageError("synthesize-stop without synthesize-start")
            await self.write_event(SynthesizeStopped().event())
        finally:
            self.in_request = False

    async def _speak_sentence(self, stream: _Streaming, sentence: str) -> None:
        """One audio-start..audio-stop for the sentence (Piper may cut it further; the pieces follow at once)."""
        text = clean_text(sentence, self.settings.max_text_chars)
        if not text:
            return
        slot, eager = stream.slot, 0 if stream.spoken else EAGER_WORDS
        stream.spoken = True
        started = False
        async with slot.lane.admit():
            async for speech in iterate_in_thread(lambda: sentences(slot.part, text, eager), slot.lane.model):
                if not started:
                    await self.write_event(AudioStart(rate=speech.rate, width=2, channels=1).event())
                    started = True
                await self._send_audio(speech.rate, speech)
        if started:
            await self.write_event(AudioStop().event())

    # -- handle --------------------------------------------------------------------------------------
    async def _handle(self, request: Transcript) -> None:
        text = request.text.strip() if isinstance(request.text, str) else ""
        if not text:
            raise UsageError("nothing to answer: the transcript is empty")
        if len(text) > self.settings.max_text_chars:
            raise UsageError(f"transcript longer than {self.settings.max_text_chars} characters")
        context = request.context if isinstance(request.context, dict) else {}
        conversation_id = context.get("conversation_id")
        conversation_id = conversation_id if isinstance(conversation_id, str) else None
        chat = self.engines.chat
        self.in_request = True
        try:
            async with chat.lane.admit():
                conversation = self.chats.get(conversation_id)
                reply = Reply()
                answer = {"conversation_id": conversation_id} if conversation_id else None
                await self.write_event(HandledStart(context=answer).event())
                async for piece in iterate_in_thread(lambda: conversation.ask(text, reply), chat.lane.model):
                    await self.write_event(HandledChunk(text=piece).event())
            await self.write_event(Handled(text=reply.text.strip(), context=answer).event())
            await self.write_event(HandledStop().event())
        finally:
            self.in_request = False


async def _in_turn(turn: Turn, work: Callable[[], Awaitable[Recognized]]) -> Recognized:
    async with turn:
        return await work()


def _code(exc: EdgeError) -> str:
    """A machine-readable code for an error event."""
    from ..errors import BusyError, NotInstalledError, TooLargeError

    if isinstance(exc, BusyError):
        return "busy"
    if isinstance(exc, TooLargeError):
        return "too-large"
    if isinstance(exc, NotInstalledError):
        return "not-installed"
    if isinstance(exc, UsageError):
        return "bad-request"
    return "failed"
