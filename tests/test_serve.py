"""`edge-assistant serve` with both faces in one process, on the embedded models: a real Wyoming client (the
`wyoming` package's own client), the OpenAI Python client, and this project's remote backend against it."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.handle import Handled
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from edge_assistant.audio.chunk import RATE
from edge_assistant.audio.sources import FileSource
from edge_assistant.stt.whisper import WhisperRecognizer
from edge_assistant.tts.output import resample
from tests.helpers import ROOT, TEMPLATE_TOKENS, run
from tests.serving import Served, free_port, read_back, read_back_file, whisper
from tests.speech import synth_espeak, with_silence

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
QUESTION = ROOT / "edge_assistant" / "data" / "question.wav"
KOREAN = "안녕하세요 저는 학생입니다 오늘 날씨가 좋네요"
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, Served]]:
    """One server for the module: Wyoming and the HTTP API at once; no request may wait (--queue 0)."""
    wyoming, http = free_port(), free_port()
    home = tmp_path_factory.mktemp("serve-home")
    server = Served(["--wyoming", f"tcp://127.0.0.1:{wyoming}", "--openai", f"127.0.0.1:{http}", "--queue", "0"], home)
    server.wait_ready()
    yield wyoming, http, server
    assert server.stop() == 0, server.stderr
    assert "Traceback" not in server.stderr


@pytest.fixture(scope="module")
def ears() -> Iterator[WhisperRecognizer]:
    recognizer = whisper()
    yield recognizer
    recognizer.close()


# -- a Wyoming client ---------------------------------------------------------------------------------------
async def _exchange(port: int, events: list[Event], until: tuple[str, ...], raw: bytes = b"") -> list[Event]:
    """Send events (and raw bytes first), then read until an event of a type in `until` (or an error)."""
    async with AsyncTcpClient("127.0.0.1", port, connect_timeout=10, read_timeout=TIMEOUT) as client:
        if raw:
            assert client._writer is not None
            client._writer.write(raw)
        for event in events:
            await client.write_event(event)
        got: list[Event] = []
        while True:
            event = await client.read_event()
            assert event is not None, f"connection closed after {[e.type for e in got]}"
            got.append(event)
            if event.type in until or event.type == "error":
                return got


def exchange(port: int, events: list[Event], until: tuple[str, ...], raw: bytes = b"") -> list[Event]:
    return asyncio.run(_exchange(port, events, until, raw))


def pcm_events(samples: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> list[Event]:
    """16 kHz int16 samples as a Wyoming audio stream in another format."""
    audio = resample(samples, RATE, rate).astype(np.int32)
    if width == 1:
        data = ((audio >> 8) + 128).astype(np.uint8)
    elif width == 4:
        data = (audio << 16).astype("<i4")
    else:
        data = audio.astype("<i2")
    if channels == 2:
        data = np.repeat(data, 2)
    raw = data.tobytes()
    step = 1024 * width * channels
    chunks = [
        AudioChunk(rate=rate, width=width, channels=channels, audio=raw[i : i + step]).event()
        for i in range(0, len(raw), step)
    ]
    return [AudioStart(rate=rate, width=width, channels=channels).event(), *chunks, AudioStop().event()]


def spoken(events: list[Event]) -> tuple[bytes, int]:
    """The PCM and rate of the audio chunks among the events."""
    rates = {e.data["rate"] for e in events if e.type == "audio-chunk"}
    assert len(rates) == 1
    return b"".join(e.payload or b"" for e in events if e.type == "audio-chunk"), rates.pop()


def test_describe_lists_the_installed_models_and_voices(served: tuple[int, int, Served]) -> None:
    events = exchange(served[0], [Describe().event()], ("info",))
    info = Info.from_event(events[-1])
    assert {m.name for m in info.asr[0].models} >= {"whisper-tiny.en", "vosk-small-ko-0.22"}
    assert "ko" in next(m for m in info.asr[0].models if m.name == "vosk-small-ko-0.22").languages
    assert {v.name for v in info.tts[0].voices} >= {"piper-en_us-joe-medium", "espeak-ng"}
    assert info.tts[0].supports_synthesize_streaming and info.asr[0].supports_transcript_streaming
    assert [m.name for m in info.handle[0].models] == ["smollm2-135m-instruct:Q4_1"]
    assert exchange(served[0], [Ping(text="hi").event()], ("pong",))[-1].data["text"] == "hi"


def test_a_spoken_question_gives_its_transcript(served: tuple[int, int, Served]) -> None:
    samples = FileSource(QUESTION).read()
    events = exchange(served[0], [Transcribe(language="en").event(), *pcm_events(samples, RATE)], ("transcript-stop",))
    types = [e.type for e in events]
    assert types[0] == "transcript-start" and types[-2:] == ["transcript", "transcript-stop"]
    transcript = Transcript.from_event(events[-2])
    assert "capital of france" in transcript.text.lower()
    assert transcript.language == "en"
    streamed = "".join(e.data["text"] for e in events if e.type == "transcript-chunk")
    assert streamed.strip() == transcript.text


@pytest.mark.parametrize(("rate", "width", "channels"), [(44100, 2, 2), (8000, 1, 1), (48000, 4, 2), (22050, 2, 1)])
def test_audio_in_any_format_is_converted(
    served: tuple[int, int, Served], rate: int, width: int, channels: int
) -> None:
    samples = FileSource(QUESTION).read()
    events = exchange(served[0], pcm_events(samples, rate, width, channels), ("transcript-stop",))
    assert "capital of france" in Transcript.from_event(events[-2]).text.lower(), events[-2]


def test_korean_goes_to_the_vosk_model_and_streams_its_partial_words(
    served: tuple[int, int, Served], tmp_path: Path
) -> None:
    spoken = with_silence([synth_espeak(KOREAN, tmp_path / "ko.wav", voice="ko")], tmp_path / "ko-padded.wav")
    events = exchange(
        served[0],
        [Transcribe(language="ko").event(), *pcm_events(FileSource(spoken).read(), RATE)],
        ("transcript-stop",),
    )
    transcript = Transcript.from_event(events[-2])
    assert transcript.language == "ko" and transcript.text
    chunks = [e.data["text"] for e in events if e.type == "transcript-chunk"]
    assert len(chunks) >= 2, chunks  # words while the audio was being recognised, not one text at the end
    streamed = "".join(chunks).split()
    kept = sum(1 for word in streamed if word in transcript.text.split())
    assert kept >= 0.6 * len(streamed), (streamed, transcript.text)  # vosk may still revise a word at the end


def test_a_language_without_a_model_is_refused_and_the_next_request_served(served: tuple[int, int, Served]) -> None:
    samples = FileSource(QUESTION).read()
    events = exchange(served[0], [Transcribe(language="ja").event(), *pcm_events(samples, RATE)], ("transcript",))
    assert events[-1].type == "error" and "ja" in events[-1].data["text"]
    events = exchange(served[0], [Transcribe(language="English").event(), *pcm_events(samples, RATE)], ("transcript",))
    assert "capital of france" in Transcript.from_event(events[-1]).text.lower()


def test_text_gives_audio_that_our_recognizer_reads_back(
    served: tuple[int, int, Served], ears: WhisperRecognizer
) -> None:
    text = "Please remind me to call my sister tomorrow evening."
    events = exchange(served[0], [Synthesize(text=text).event()], ("audio-stop",))
    assert events[0].type == "audio-start" and events[-1].type == "audio-stop"
    pcm, rate = spoken(events)
    assert rate == 22050
    heard = read_back(ears, pcm, rate).lower()
    assert "call my sister tomorrow" in heard, heard


def test_streamed_text_is_spoken_sentence_by_sentence(served: tuple[int, int, Served], ears: WhisperRecognizer) -> None:
    pieces = ["The meeting was moved ", "to Thursday. Turn off the", " lights in the kitchen", "."]
    events = exchange(
        served[0],
        [
            SynthesizeStart(voice=SynthesizeVoice(name="piper-en_us-joe-medium")).event(),
            *[SynthesizeChunk(text=p).event() for p in pieces],
            Synthesize(text="".join(pieces)).event(),  # sent for older servers: ignored in a stream
            SynthesizeStop().event(),
        ],
        ("synthesize-stopped",),
    )
    types = [e.type for e in events]
    assert types.count("audio-start") == 2 and types.count("audio-stop") == 2, types
    assert types[-1] == "synthesize-stopped"
    first_stop = types.index("audio-stop")
    first, rate = spoken(events[: first_stop + 1])
    second, _ = spoken(events[first_stop + 1 :])
    assert "thursday" in read_back(ears, first, rate).lower()
    assert "kitchen" in read_back(ears, second, rate).lower()


def test_handle_answers_with_the_language_model(served: tuple[int, int, Served]) -> None:
    events = exchange(served[0], [Transcript(text="What is the capital of France?").event()], ("handled-stop",))
    types = [e.type for e in events]
    assert types[0] == "handled-start" and types[-2:] == ["handled", "handled-stop"]
    answer = Handled.from_event(events[-2]).text or ""
    assert "Paris" in answer and not TEMPLATE_TOKENS.search(answer)
    assert "".join(e.data["text"] for e in events if e.type == "handled-chunk").strip() == answer


def test_garbage_gets_an_error_and_the_server_goes_on(served: tuple[int, int, Served]) -> None:
    events = exchange(served[0], [Describe().event()], ("info",), raw=b"this is not an event\n")
    assert events[0].type == "error" and "malformed" in events[0].data["text"]
    events = exchange(served[0], [Event(type="synthesize", data={"voice": {}})], ("audio-stop",))
    assert events[-1].type == "error" and "synthesize" in events[-1].data["text"]
    huge = json.dumps({"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1},
                       "payload_length": 1 << 30}).encode() + b"\n"  # fmt: skip
    events = exchange(served[0], [], ("info",), raw=huge)
    assert events[-1].type == "error" and "larger than" in events[-1].data["text"]
    assert Info.from_event(exchange(served[0], [Describe().event()], ("info",))[-1]).asr


# -- the OpenAI-compatible API --------------------------------------------------------------------------------
def openai_client(port: int, key: str = "unused") -> Any:
    from openai import OpenAI

    return OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=TIMEOUT)


QA = [{"role": "user", "content": "What is the capital of France?"}]
SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer briefly and accurately."}


def test_models_chat_and_chat_streamed(served: tuple[int, int, Served]) -> None:
    client = openai_client(served[1])
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "smollm2-135m-instruct:Q4_1" and "whisper-tiny.en" in ids and "piper-en_us-joe-medium" in ids
    done = client.chat.completions.create(model="anything", messages=[SYSTEM, *QA], temperature=0)
    assert "Paris" in (done.choices[0].message.content or "")
    assert done.choices[0].finish_reason == "stop" and done.usage is not None and done.usage.completion_tokens > 0
    stream = client.chat.completions.create(
        model="anything", messages=[SYSTEM, *QA], temperature=0, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == done.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == done.usage.completion_tokens
    short = client.chat.completions.create(model="x", messages=QA, temperature=0, max_tokens=3)
    assert short.choices[0].finish_reason == "length"


def test_a_busy_model_answers_429_and_the_queue_frees(served: tuple[int, int, Served]) -> None:
    import openai

    story = [{"role": "user", "content": "Write a very long story about a dragon."}]
    stream = openai_client(served[1]).chat.completions.create(
        model="x", messages=story, max_tokens=400, stream=True, seed=1
    )
    next(iter(stream))
    with pytest.raises(openai.RateLimitError) as refused:  # each client its own connection: no keep-alive races
        openai_client(served[1]).chat.completions.create(model="x", messages=QA, temperature=0)
    assert "busy" in str(refused.value)
    events = exchange(served[0], [Transcript(text="Hello?").event()], ("handled-stop",))
    assert events[-1].type == "error" and events[-1].data["code"] == "busy"
    stream.close()
    done = openai_client(served[1]).chat.completions.create(model="x", messages=[SYSTEM, *QA], temperature=0)
    assert "Paris" in (done.choices[0].message.content or "")


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_transcription_of_an_uploaded_wav(served: tuple[int, int, Served], fmt: str) -> None:
    client = openai_client(served[1])
    with QUESTION.open("rb") as f:
        done: Any = client.audio.transcriptions.create(model="whisper-1", file=f, response_format=fmt)  # type: ignore[call-overload]
    text = done if isinstance(done, str) else done.text
    assert "capital of france" in text.lower()
    if fmt == "srt":
        assert text.startswith("1\n00:00:0") and " --> " in text
    if fmt == "vtt":
        assert text.startswith("WEBVTT\n\n00:00:0")
    if fmt == "verbose_json":
        assert done.language == "english" and 3.0 < done.duration < 3.5
        assert done.segments and 0 <= done.segments[0].start < done.segments[0].end <= done.duration


def test_speech_is_a_wav_our_recognizer_reads_back(
    served: tuple[int, int, Served], ears: WhisperRecognizer, tmp_path: Path
) -> None:
    client = openai_client(served[1])
    out = tmp_path / "speech.wav"
    client.audio.speech.create(
        model="tts-1", voice="alloy", input="The children played football in the park.", response_format="wav"
    ).write_to_file(out)
    with wave.open(str(out)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22050)
        assert wav.getnframes() > 22050
    assert "football in the park" in read_back_file(ears, out).lower()
    raw = client.audio.speech.create(model="tts-1", voice="espeak-ng", input="Good morning.", response_format="pcm")
    assert "good morning" in read_back(ears, raw.read(), 24000).lower()


def test_bad_http_requests_get_openai_errors(served: tuple[int, int, Served]) -> None:
    import httpx

    base = f"http://127.0.0.1:{served[1]}/v1"
    bad = httpx.post(f"{base}/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    bad = httpx.post(f"{base}/chat/completions", json={"messages": [{"role": "tool", "content": "x"}]})
    assert bad.status_code == 400 and "role" in bad.json()["error"]["message"]
    bad = httpx.post(f"{base}/audio/speech", json={"input": "Hi.", "voice": "nobody"})
    assert bad.status_code == 400 and "piper-en_us-joe-medium" in bad.json()["error"]["message"]
    bad = httpx.post(f"{base}/audio/transcriptions", files={"file": ("x.wav", b"RIFF0000garbage")})
    assert bad.status_code == 400 and bad.json()["error"]["message"]
    assert httpx.get(f"{base}/models").status_code == 200


# -- this project's remote backend, pointed at its own server ---------------------------------------------------
def test_ask_chat_and_translate_through_the_remote_backend(served: tuple[int, int, Served]) -> None:
    remote = ["--backend", "remote", "--base-url", f"http://127.0.0.1:{served[1]}/v1"]
    code, out, err = run("ask", *remote, "--temperature", "0", "What is the capital of France?")
    assert code == 0, err
    assert "Paris" in out
    code, out, err = run("chat", *remote, "--temperature", "0", stdin="What is the capital of France?\n/reset\nHi!\n")
    assert code == 0, err
    assert "Paris" in out and len(out.strip().splitlines()) >= 2
    code, out, err = run("translate", *remote, "--to", "fr", "--json", "Good morning.")
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == "smollm2-135m-instruct:Q4_1" and result["sentences"][0]["source"] == "Good morning."
    assert result["sentences"][0]["translation"] and not TEMPLATE_TOKENS.search(result["text"])
