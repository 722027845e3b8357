"""`edge-assistant transcribe`: notes in every format, sessions, stdin, crash safety, Ctrl-C, bad inputs."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_assistant.audio.sources import FileSource
from edge_assistant.cli import main
from tests.helpers import run, spawn
from tests.speech import SENTENCES, synth_piper, wer, with_silence

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_network")]
FIRST, SECOND = SENTENCES[0], SENTENCES[4]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sentences with silence around them, 16 kHz mono WAV."""
    folder = tmp_path_factory.mktemp("speech")
    parts = [synth_piper(FIRST, folder / "1.wav"), synth_piper(SECOND, folder / "2.wav")]
    return with_silence(parts, folder / "two.wav")


def test_to_stdout_as_text(speech: Path) -> None:
    code, out, err = run("transcribe", "--input", str(speech))
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(lines) == 2
    assert wer(FIRST, lines[0].split("] ", 1)[1]) < 0.2 and wer(SECOND, lines[1].split("] ", 1)[1]) < 0.2
    assert re.search(r"transcribed \d+\.\d s of audio: 2 utterances, \d+ words", err)


def test_srt_is_valid_and_sessions_append(speech: Path, tmp_path: Path) -> None:
    out = tmp_path / "notes.srt"
    assert run("transcribe", "-i", str(speech), "-o", str(out))[0] == 0
    first = out.read_text()
    cues = re.findall(r"(?m)^(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n(.+)\n\n", first)
    assert [c[0] for c in cues] == ["1", "2"] and all(c[1] < c[2] for c in cues)
    assert run("transcribe", "-i", str(speech), "-o", str(out))[0] == 0
    both = out.read_text()
    assert both.startswith(first)
    cues = re.findall(r"(?m)^(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n", both)
    assert [c[0] for c in cues] == ["1", "2", "3", "4"]
    starts = [c[1] for c in cues]
    assert starts == sorted(starts), "the second session continues after the first"
    assert run("transcribe", "-i", str(speech), "-o", str(out), "--overwrite")[0] == 0
    assert out.read_text() == first


def test_vtt_md_txt_jsonl(speech: Path, tmp_path: Path) -> None:
    for fmt in ("vtt", "md", "txt", "jsonl"):
        out = tmp_path / f"notes.{fmt}"
        code, _, err = run("transcribe", "-i", str(speech), "-o", str(out))
        assert code == 0, err
        text = out.read_text()
        if fmt == "vtt":
            assert text.startswith("WEBVTT\n\nNOTE session ")
            assert len(re.findall(r"(?m)^\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}$", text)) == 2
        elif fmt == "md":
            assert text.startswith("## Session ") and len(re.findall(r"(?m)^- `\d\d:\d\d:\d\d` ", text)) == 2
        elif fmt == "txt":
            assert len(re.findall(r"(?m)^\[\d\d:\d\d:\d\d\.\d{3} - \d\d:\d\d:\d\d\.\d{3}\] ", text)) == 2
        else:
            records = [json.loads(line) for line in text.splitlines()]
            assert records[0]["type"] == "session"
            utterances = [r for r in records if r["type"] == "utterance"]
            assert len(utterances) == 2
            for u in utterances:
                assert u["words"] and all(0 <= w["confidence"] <= 1 for w in u["words"])
                assert u["start"] <= u["words"][0]["start"] and u["words"][-1]["end"] <= u["end"] + 1e-6


def test_format_option_overrides_extension(speech: Path, tmp_path: Path) -> None:
    out = tmp_path / "notes.log"
    assert run("transcribe", "-i", str(speech), "-o", str(out), "--format", "jsonl")[0] == 0
    assert json.loads(out.read_text().splitlines()[0])["type"] == "session"


def test_raw_stdin(speech: Path) -> None:
    raw = FileSource(speech).read().astype("<i2").tobytes()
    result = CliRunner().invoke(main, ["transcribe", "--input", "-", "--format", "txt"], input=raw)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n[") + result.stdout.startswith("[") >= 1
    assert "fox" in result.stdout


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return spawn("transcribe", *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(path: Path, pattern: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and re.search(pattern, path.read_text()):
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never matched {pattern!r}")


def test_sigkill_keeps_every_finished_utterance(speech: Path, tmp_path: Path) -> None:
    out = tmp_path / "notes.jsonl"
    proc = _spawn(["--input", "-", "-o", str(out)])
    assert proc.stdin is not None
    audio = FileSource(speech).read()
    first_end = len(audio) // 2  # the first sentence and the silence after it
    proc.stdin.write(audio[:first_end].astype("<i2").tobytes())
    proc.stdin.flush()
    _wait_for(out, r'"type": "utterance"')
    proc.stdin.write(audio[first_end : first_end + 16000].astype("<i2").tobytes())  # part of the second
    proc.stdin.flush()
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    lines = out.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is complete JSON
    utterances = [r for r in records if r["type"] == "utterance"]
    assert len(utterances) == 1 and wer(FIRST, utterances[0]["text"]) < 0.2
    assert out.read_text().endswith("\n")


def _stop_mid_utterance(proc: subprocess.Popen[bytes], sig: int, out: Path, audio: np.ndarray) -> bytes:
    """Feed the first sentence and wait for its note, then half of the second (no pause after it), then `sig`."""
    assert proc.stdin is not None
    half = len(audio) // 2
    proc.stdin.write(audio[:half].astype("<i2").tobytes())
    proc.stdin.flush()
    _wait_for(out, r"utterance")
    speaking = next(i for i in range(half, len(audio), 800) if np.abs(audio[i : i + 800]).max() > 3000)
    proc.stdin.write(audio[half : speaking + 24000].astype("<i2").tobytes())  # 1.5 s into the second sentence
    proc.stdin.flush()
    time.sleep(1.0)
    proc.send_signal(sig)
    time.sleep(0.2)
    proc.stdin.close()
    proc.stdin = None
    _, err = proc.communicate(timeout=120)
    return err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_files_the_utterance_in_progress_then_exits(
    speech: Path, tmp_path: Path, sig: int, code: int
) -> None:
    out = tmp_path / "notes.jsonl"
    proc = _spawn(["--input", "-", "-o", str(out)])
    err = _stop_mid_utterance(proc, sig, out, FileSource(speech).read())
    assert proc.returncode == code, err
    assert b"transcribed" in err and b"2 utterances" in err and b"(stopped)" in err and b"Traceback" not in err
    utterances = [json.loads(line) for line in out.read_text().splitlines() if '"utterance"' in line]
    assert len(utterances) == 2 and wer(FIRST, utterances[0]["text"]) < 0.2
    # the half-spoken sentence is filed (a word cut at its onset may be misheard: most of them are in it)
    words = re.findall(r"[\w']+", utterances[1]["text"].lower())
    assert len(words) >= 3 and sum(w in SECOND.lower() for w in words) >= 0.7 * len(words), utterances[1]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_speech_translation_stops_the_same_way(speech: Path, tmp_path: Path, sig: int, code: int) -> None:
    out = tmp_path / "bilingual.jsonl"
    proc = spawn(
        "translate",
        "--to",
        "fr",
        "--input",
        "-",
        "-o",
        str(out),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    err = _stop_mid_utterance(proc, sig, out, FileSource(speech).read())
    assert proc.returncode == code, err
    assert b"translated 2 utterances" in err and b"Traceback" not in err
    pairs = [json.loads(line) for line in out.read_text().splitlines() if '"utterance"' in line]
    assert len(pairs) == 2 and all(p["translation"] for p in pairs)


def test_summary_is_appended_to_markdown(speech: Path, tmp_path: Path) -> None:
    out = tmp_path / "meeting.md"
    code, _, err = run("transcribe", "-i", str(speech), "-o", str(out), "--summary")
    assert code == 0, err
    text = out.read_text()
    assert text.count("- `") == 2
    summary = text.split("### Summary", 1)[1].strip()
    assert summary and "<|im_" not in summary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "/no/such/file.wav"], "no such audio file"),
        (["--input", "{empty}"], "is empty"),
        (["--input", "{junk}"], "cannot read"),
        (["--stt-model", "vosk-small-en-us-0.15", "--input", "{speech}"], "not installed; get it with"),
        (["--stt-model", "llama-3.2-1b-instruct", "--input", "{speech}"], "not a speech-to-text model"),
        (["--engine", "vosk", "--language", "ja", "--input", "{speech}"], "no vosk speech model installed"),
        (["--language", "klingon", "--input", "{speech}"], "unknown language"),
        (["--device", "nonexistent-mic"], "no microphone found"),
    ],
)
def test_bad_inputs(args: list[str], message: str, tmp_path: Path, speech: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"definitely not audio" * 50)
    args = [a.format(empty=tmp_path / "empty.wav", junk=tmp_path / "junk.wav", speech=speech) for a in args]
    code, _, err = run("transcribe", *args)
    assert code in (1, 2), err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_existing_notes_are_never_lost_on_a_failed_run(tmp_path: Path) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("earlier notes\n")
    code, _, _ = run("transcribe", "--input", "/no/such.wav", "-o", str(out))
    assert code != 0 and out.read_text() == "earlier notes\n"


def test_silence_only_writes_no_utterances(tmp_path: Path) -> None:
    import soundfile

    quiet = tmp_path / "quiet.wav"
    soundfile.write(quiet, np.zeros(32000, dtype=np.int16), 16000, subtype="PCM_16")
    code, _, err = run("transcribe", "-i", str(quiet))
    assert code == 0 and "0 utterances" in err
