"""The parts of `serve` on their own, with fakes at the model seams: lanes and the busy answer, PCM conversion,
streamed transcript text, event reading, addresses, response formats, and the HTTP API's guards."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from edge_assistant.audio.chunk import RATE, AudioChunk
from edge_assistant.errors import BusyError, ContextOverflowError, TooLargeError, UsageError
from edge_assistant.llm.options import GenerationOptions, Message, Reply, Timings
from edge_assistant.serve.address import Address, parse_address
from edge_assistant.serve.asr import AsrSession, Recognized, StableText
from edge_assistant.serve.engines import Offer, Slot
from edge_assistant.serve.lanes import Lane
from edge_assistant.serve.openai import create_app
from edge_assistant.serve.pcm import PcmConverter, PcmFormat
from edge_assistant.serve.transcripts import as_srt, as_verbose, as_vtt, check_format
from edge_assistant.serve.voice import lead
from edge_assistant.serve.wyoming import BadEvent, read_event
from edge_assistant.settings import ServeSettings
from edge_assistant.stt.types import Utterance, Word
from edge_assistant.stt.whisper import WhisperRecognizer


# -- lanes -----------------------------------------------------------------------------------------------------
def test_a_lane_runs_one_queues_depth_and_refuses_the_rest() -> None:
    async def scenario() -> list[str]:
        lane = Lane("model", depth=1)
        order: list[str] = []
        release = asyncio.Event()

        async def job(name: str) -> None:
            async with lane.admit():
                order.append(f"{name} runs")
                await release.wait()

        first = asyncio.create_task(job("a"))
        await asyncio.sleep(0)
        second = asyncio.create_task(job("b"))
        await asyncio.sleep(0)
        with pytest.raises(BusyError, match=r"model is busy \(1 request waiting\)"):
            lane.admit()
        release.set()
        await asyncio.gather(first, second)
        assert lane.admitted == 0
        async with lane.admit():
            order.append("c runs")
        return order

    assert asyncio.run(scenario()) == ["a runs", "b runs", "c runs"]


def test_a_request_cancelled_while_waiting_gives_its_place_back() -> None:
    async def scenario() -> int:
        lane = Lane("model", depth=1)
        hold = lane.admit()
        await hold.__aenter__()
        waiting = asyncio.create_task(_enter(lane))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await hold.__aexit__(None, None, None)
        return lane.admitted

    assert asyncio.run(scenario()) == 0


async def _enter(lane: Lane) -> None:
    async with lane.admit():
        pass


# -- audio in any format ---------------------------------------------------------------------------------------
def tone(rate: int, seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(12000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def test_stereo_44k1_becomes_16k_mono_of_the_same_sound() -> None:
    left = tone(44100)
    stereo = np.stack([left, left], axis=1).astype("<i2").tobytes()
    converter = PcmConverter(PcmFormat(44100, 2, 2))
    chunks = [converter.convert(stereo[i : i + 4001]) for i in range(0, len(stereo), 4001)]  # odd cuts: split frames
    chunks.append(converter.convert(b"", last=True))
    out = np.concatenate([c.samples for c in chunks if c is not None])
    assert abs(len(out) - RATE) <= 2
    expected = tone(RATE)
    assert np.corrcoef(out[1000:15000], expected[1000:15000])[0, 1] > 0.99
    assert converter.seconds == pytest.approx(1.0, abs=0.001)


@pytest.mark.parametrize("width", [1, 3, 4])
def test_8_24_and_32_bit_samples_keep_their_level(width: int) -> None:
    samples = tone(RATE).astype(np.int32)
    if width == 1:
        data = ((samples >> 8) + 128).astype(np.uint8).tobytes()
    elif width == 3:
        wide = (samples << 8).astype("<i4").tobytes()
        data = b"".join(wide[i : i + 3] for i in range(0, len(wide), 4))
    else:
        data = (samples << 16).astype("<i4").tobytes()
    chunk = PcmConverter(PcmFormat(RATE, width, 1)).convert(data)
    assert chunk is not None
    assert np.abs(chunk.samples.astype(np.int32) - samples).max() <= (256 if width == 1 else 0)


@pytest.mark.parametrize(("rate", "width", "channels"), [(0, 2, 1), (16000, 5, 1), (16000, 2, 0), (10**7, 2, 1)])
def test_unsupported_formats_are_refused(rate: int, width: int, channels: int) -> None:
    with pytest.raises(UsageError):
        PcmFormat(rate, width, channels).check()


class FakeRecognizer:
    """Yields, for each chunk, a partial of all the words so far, and a final at the end."""

    name = "fake"
    engine = "fake"
    streaming = True

    def __init__(self, script: Sequence[str]) -> None:
        self.script = list(script)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def stream(self, chunks: Any) -> Iterator[Utterance]:
        said = iter(self.script)
        for _ in chunks:
            text = next(said, None)
            if text is not None:
                yield Utterance(text.rstrip("!"), 0, 1, final=text.endswith("!"))


def test_a_session_recognises_while_audio_arrives_and_streams_only_stable_words() -> None:
    script = ["what", "what is", "what is the", "what is the capital", "what is the capital!", "of", "of france!"]
    recognizer = FakeRecognizer(script)
    session = AsrSession(recognizer, PcmFormat(RATE, 2, 1), max_seconds=10)  # type: ignore[arg-type]
    done: list[Recognized] = []
    worker = threading.Thread(target=lambda: done.append(session.run()))
    worker.start()
    streamed: list[str] = []
    for _ in range(7):
        session.feed(np.zeros(800, dtype="<i2").tobytes())
        time.sleep(0.02)
        streamed += session.take_updates()
    session.end()
    worker.join(5)
    streamed += session.take_updates()
    assert "".join(streamed) == "what is the capital of france"
    assert done[0].text == "what is the capital of france" and done[0].seconds == pytest.approx(0.35)


def test_stable_text_never_takes_back_what_it_sent() -> None:
    stable = StableText()
    assert stable.partial("the") == ""
    assert stable.partial("the quick") == ""
    assert stable.partial("the quick brown") == "the"  # three results agree on it; the last word may change
    assert stable.partial("the quack brown fox") == ""  # changed its mind about the second word: wait
    assert stable.partial("the quack brown fox jumps") == ""
    assert stable.partial("the quack brown fox jumps over") == " quack brown fox"
    assert stable.final("a quick brown fox") == ""  # the final transcript will say what it is
    assert stable.final("jumps over") == " jumps over"


def test_too_much_audio_is_refused() -> None:
    session = AsrSession(FakeRecognizer([]), PcmFormat(RATE, 2, 1), max_seconds=1)  # type: ignore[arg-type]
    session.feed(np.zeros(RATE, dtype="<i2").tobytes())
    with pytest.raises(TooLargeError, match="longer than 1 s"):
        session.feed(np.zeros(100, dtype="<i2").tobytes())


# -- whisper keeps the text it started at the last pause --------------------------------------------------------
class CountingWhisper(WhisperRecognizer):
    def __init__(self) -> None:
        super().__init__(__import__("pathlib").Path("unused"), name="counting")
        self.calls = 0

    def transcribe(
        self, samples: np.ndarray, offset: float = 0.0, stop: threading.Event | None = None
    ) -> Utterance | None:
        self.calls += 1
        time.sleep(0.05)
        return Utterance(f"call {self.calls}", offset, offset + len(samples) / RATE)


def test_audio_that_ends_in_a_short_pause_is_not_transcribed_twice() -> None:
    rng = np.random.default_rng(0)
    speech = np.clip(rng.normal(0, 4000, RATE), -32768, 32767).astype(np.int16)
    silence = np.zeros(int(RATE * 0.3), dtype=np.int16)

    def paced() -> Iterator[AudioChunk]:
        audio = np.concatenate([silence, speech, silence])
        step = RATE // 20
        for i in range(0, len(audio), step):
            if i > (len(silence) + len(speech)):
                time.sleep(0.02)  # the tail arrives in real time: the speculative transcription starts
            yield AudioChunk(audio[i : i + step], i / RATE)

    recognizer = CountingWhisper()
    texts = [u.text for u in recognizer.stream(paced()) if u.final]
    assert texts == ["call 1"] and recognizer.calls == 1


# -- Wyoming event reading -----------------------------------------------------------------------------------
def read(raw: bytes, limit: int = 1000) -> Any:
    async def go() -> Any:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await read_event(reader, limit)

    return asyncio.run(go())


def test_events_are_read_with_their_data_and_payload() -> None:
    data = b'{"width": 2, "channels": 1}'
    header = {"type": "audio-chunk", "data": {"rate": 16000}, "data_length": len(data), "payload_length": 4}
    event = read(json.dumps(header).encode() + b"\n" + data + b"abcd")
    assert event.type == "audio-chunk" and event.data == {"rate": 16000, "width": 2, "channels": 1}
    assert event.payload == b"abcd"
    assert read(b"") is None


@pytest.mark.parametrize(
    ("raw", "fatal"),
    [
        (b"not json\n", False),
        (b'{"data": {}}\n', False),
        (b'["type"]\n', False),
        (b'{"type": "x", "payload_length": 5000}\n', True),
        (b'{"type": "x", "data_length": -1}\n', True),
        (b'{"type": "x", "data_length": 3}\nabc', False),
    ],
)
def test_malformed_events_are_named(raw: bytes, fatal: bool) -> None:
    with pytest.raises(BadEvent) as bad:
        read(raw)
    assert bad.value.fatal is fatal


# -- addresses and formats -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "scheme", "address", "loopback"),
    [
        ("tcp://127.0.0.1:10300", "tcp", Address("127.0.0.1", 10300), True),
        ("tcp://0.0.0.0:10300", "tcp", Address("0.0.0.0", 10300), False),
        ("localhost:8080", "http", Address("localhost", 8080), True),
        ("http://[::1]:8080", "http", Address("::1", 8080), True),
        (":9000", "http", Address("127.0.0.1", 9000), True),
        ("9000", None, Address("127.0.0.1", 9000), True),
        ("192.168.1.5:80", "http", Address("192.168.1.5", 80), False),
    ],
)
def test_addresses(text: str, scheme: str | None, address: Address, loopback: bool) -> None:
    parsed = parse_address(text, scheme)
    assert parsed == address and parsed.loopback is loopback


@pytest.mark.parametrize("text", ["tcp://host", "unix:///tmp/x", "host:0", "host:port", "tcp://h:1/path"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_address(text, "tcp")


def recognized() -> Recognized:
    words = (Word("Hello", 0.5, 0.9), Word("there.", 0.9, 1.2))
    return Recognized((Utterance("Hello there.", 0.5, 1.2, words=words), Utterance("Bye.", 61.0, 61.75)), 62.0, "en")


def test_transcripts_as_subtitles_and_verbose_json() -> None:
    assert as_srt(recognized()) == (
        "1\n00:00:00,500 --> 00:00:01,200\nHello there.\n\n2\n00:01:01,000 --> 00:01:01,750\nBye.\n"
    )
    assert as_vtt(recognized()).startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.200\nHello there.\n\n00:01:01.000")
    verbose = as_verbose(recognized(), words=True)
    assert verbose["language"] == "english" and verbose["text"] == "Hello there. Bye." and verbose["duration"] == 62
    assert [s["id"] for s in verbose["segments"]] == [0, 1] and verbose["words"][1]["word"] == "there."
    assert "words" not in as_verbose(recognized(), words=False)
    with pytest.raises(UsageError, match="one of: json"):
        check_format("mp3")


# -- speech ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("It is twenty degrees outside, and sunny. Bye.", ["It is twenty degrees outside,", "and sunny. Bye."]),
        ("In the kitchen; the lights are on.", ["In the kitchen; the lights are on."]),  # a short first clause
        ("The kitchen light is on.", ["The kitchen light is on."]),
        ("Hi. Then the second sentence, with a comma.", ["Hi. Then the second sentence, with a comma."]),
        ("", []),
    ],
)
def test_a_long_first_sentence_is_spoken_from_its_first_comma(text: str, parts: list[str]) -> None:
    assert lead(text) == parts
    assert lead(text, eager_words=0) == ([text] if text else [])


# -- the HTTP API with a fake model ---------------------------------------------------------------------------
@dataclass
class FakeBackend:
    name: str = "fake-llm"
    context_length: int = 64
    gate: threading.Event = field(default_factory=threading.Event)
    running: threading.Event = field(default_factory=threading.Event)
    seen: list[GenerationOptions] = field(default_factory=list)

    def stream(self, messages: Sequence[Message], options: GenerationOptions, reply: Reply) -> Generator[str]:
        self.seen.append(options)
        if sum(len(m.content.split()) for m in messages) > self.context_length:
            raise ContextOverflowError("the prompt is too long")
        self.running.set()
        self.gate.wait(30)
        for piece in ["Paris", " is", " the", " capital."]:
            reply.text += piece
            yield piece
        reply.finish_reason = "stop"
        reply.timings = Timings(prompt_tokens=5, completion_tokens=4)


@dataclass
class FakeEngines:
    backend: FakeBackend
    depth: int = 0
    lane: Lane | None = None

    @property
    def chat(self) -> Slot[Any]:
        if self.lane is None:
            self.lane = Lane(self.backend.name, self.depth)
        return Slot(self.backend, self.lane)

    def offers(self) -> list[Offer]:
        return [Offer("fake-llm", "llm", "fake", ("en",))]


@contextmanager
def client(backend: FakeBackend, key: str | None = None, depth: int = 0, max_mb: float = 1.0) -> Iterator[TestClient]:
    """The app on one event loop for all its requests (as in the server)."""
    settings = ServeSettings(api_key=key, queue=depth, max_body_mb=max_mb)
    with TestClient(create_app(FakeEngines(backend, depth), settings)) as http:  # type: ignore[arg-type]
        yield http


ASK = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}


def test_chat_completion_and_its_stream() -> None:
    backend = FakeBackend()
    backend.gate.set()
    with client(backend) as http:
        done = http.post("/v1/chat/completions", json={**ASK, "temperature": 0, "max_tokens": 9, "stop": "\n"}).json()
        assert done["choices"][0]["message"] == {"role": "assistant", "content": "Paris is the capital."}
        assert done["usage"]["total_tokens"] == 9 and done["model"] == "fake-llm"
        greedy = backend.seen[-1]
        assert (greedy.temperature, greedy.top_k, greedy.max_tokens, greedy.stop) == (0, 1, 9, ("\n",))
        with http.stream("POST", "/v1/chat/completions", json={**ASK, "stream": True}) as r:
            lines = [line for line in r.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        events = [json.loads(line[6:]) for line in lines[:-1]]
        assert events[0]["choices"][0]["delta"]["role"] == "assistant"
        assert "".join(e["choices"][0]["delta"].get("content", "") for e in events) == "Paris is the capital."
        assert events[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_full_queue_answers_429_at_once() -> None:
    backend = FakeBackend()
    with client(backend, depth=1) as http:
        answers: list[int] = []
        threads = [
            threading.Thread(target=lambda: answers.append(http.post("/v1/chat/completions", json=ASK).status_code))
        ]
        threads[0].start()
        assert backend.running.wait(10)
        threads.append(
            threading.Thread(target=lambda: answers.append(http.post("/v1/chat/completions", json=ASK).status_code))
        )
        threads[1].start()
        time.sleep(0.3)  # the second waits in the queue
        refused = http.post("/v1/chat/completions", json=ASK)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "busy"
        backend.gate.set()
        for thread in threads:
            thread.join(10)
        assert answers == [200, 200]


def test_keys_bodies_and_bad_requests() -> None:
    backend = FakeBackend()
    backend.gate.set()
    with client(backend, key="secret", max_mb=0.01) as http:
        assert http.get("/v1/models").status_code == 401
        assert http.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        auth = {"Authorization": "Bearer secret"}
        assert http.get("/v1/models", headers=auth).json()["data"][0]["id"] == "fake-llm"
        big = http.post("/v1/chat/completions", content=b"x" * 20000, headers=auth)
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
        chunked = http.post("/v1/chat/completions", content=iter([b"x" * 8000] * 3), headers=auth)
        assert chunked.status_code == 413
        assert http.post("/v1/chat/completions", json={"messages": []}, headers=auth).status_code == 400
        assert http.post("/v1/chat/completions", json={**ASK, "n": 2}, headers=auth).status_code == 400
        image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
        assert "send text" in http.post("/v1/chat/completions", json=image, headers=auth).json()["error"]["message"]
        long = {"messages": [{"role": "user", "content": "word " * 100}]}
        too_long = http.post("/v1/chat/completions", json=long, headers=auth)
        assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "context_length_exceeded"
        assert http.get("/v1/models", headers=auth).status_code == 200  # still serving


# -- the Wyoming handler with a fake recognizer ----------------------------------------------------------------
@dataclass
class FakeSpeechEngines:
    lane: Lane = field(default_factory=lambda: Lane("fake", 0))

    def offers(self) -> list[Offer]:
        return [Offer("fake-stt", "stt", "fake", ("en",))]

    async def recognizer(self, language: str | None = None, model: str | None = None) -> Slot[Any]:
        return Slot(FakeRecognizer(["hello world!"] * 1000), self.lane)


def wyoming_exchange(settings: ServeSettings, send: list[Any], engines: FakeSpeechEngines, until: str) -> list[Any]:
    """Serve one connection with a WyomingHandler; send the events; read until an event of type `until`."""
    from wyoming.client import AsyncTcpClient

    from edge_assistant.serve.chats import Chats
    from edge_assistant.serve.wyoming import WyomingHandler

    async def go() -> list[Any]:
        async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            chats = Chats(None, "")  # type: ignore[arg-type]
            await WyomingHandler(reader, writer, engines, chats, settings).run()  # type: ignore[arg-type]

        server = await asyncio.start_server(connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        got = []
        async with AsyncTcpClient("127.0.0.1", port, read_timeout=10) as client:
            for event in send:
                await client.write_event(event.event())
            while (event := await client.read_event()) is not None:
                got.append(event)
                if event.type == until:
                    break
        server.close()
        return got

    return asyncio.run(go())


def test_a_client_silent_in_the_middle_of_a_request_is_dropped_and_frees_the_model() -> None:
    from wyoming.audio import AudioChunk as Chunk
    from wyoming.audio import AudioStart

    engines = FakeSpeechEngines()
    pcm = np.zeros(1600, dtype="<i2").tobytes()
    events = wyoming_exchange(
        ServeSettings(idle=0.3),
        [AudioStart(rate=RATE, width=2, channels=1), Chunk(rate=RATE, width=2, channels=1, audio=pcm)],
        engines,
        "error",
    )
    assert events[0].type == "transcript-start"
    assert events[-1].type == "error" and events[-1].data["code"] == "timeout"
    assert engines.lane.admitted == 0


def test_too_long_audio_gets_an_error_and_the_rest_is_ignored() -> None:
    from wyoming.audio import AudioChunk as Chunk
    from wyoming.audio import AudioStart, AudioStop
    from wyoming.info import Describe

    engines = FakeSpeechEngines()
    second = np.zeros(RATE, dtype="<i2").tobytes()
    chunks = [Chunk(rate=RATE, width=2, channels=1, audio=second) for _ in range(3)]
    events = wyoming_exchange(
        ServeSettings(max_audio_seconds=2, idle=0.5),
        [AudioStart(rate=RATE, width=2, channels=1), *chunks, AudioStop(), Describe()],
        engines,
        "info",
    )
    types = [e.type for e in events]
    assert types[0] == "transcript-start" and "error" in types and types[-1] == "info", types
    error = events[types.index("error")]
    assert error.data["code"] == "too-large" and "longer than 2 s" in error.data["text"]
    assert "transcript" not in types and engines.lane.admitted == 0
