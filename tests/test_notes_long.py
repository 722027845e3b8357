"""Notes from recordings: common formats decoded in blocks, timestamps where the speech was placed, memory that
does not grow with the file, absurd headers refused, resume after a kill, progress on a terminal only."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.helpers import run
from tests.recordings import Placed, arrange, write
from tests.speech import SENTENCES, synth_piper, wer

pytestmark = pytest.mark.slow
SPOKEN = [SENTENCES[i] for i in (0, 3, 5, 8, 9, 6)]
GAPS = [3.0, 2.5, 4.0, 2.0, 3.5, 1.5]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, list[Placed]]:
    """About 40 s: six sentences with 1.5-4 s of silence between them, 48 kHz stereo."""
    folder = tmp_path_factory.mktemp("clips")
    clips = [(text, synth_piper(text, folder / f"{i}.wav")) for i, text in enumerate(SPOKEN)]
    return arrange(clips, GAPS)


@pytest.fixture(scope="module")
def wav(recording: tuple[np.ndarray, list[Placed]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(recording[0], tmp_path_factory.mktemp("rec") / "meeting.wav")


def _utterances(path: Path) -> list[dict[str, object]]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["type"] == "utterance"]


def _child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".m4a"])
def test_a_recording_in_each_format_gives_the_text_where_it_was_said(
    suffix: str, recording: tuple[np.ndarray, list[Placed]], tmp_path: Path
) -> None:
    data, placed = recording
    path = write(data, tmp_path / f"meeting{suffix}")
    notes = tmp_path / "notes.jsonl"
    # windows of 10 s: the recording is cut (at quiet moments) into several, as an hour would be
    code, _, err = run("transcribe", "-i", str(path), "-o", str(notes), "--window", "10")
    assert code == 0, err
    got = _utterances(notes)
    said = " ".join(str(u["text"]) for u in got)
    assert wer(" ".join(SPOKEN), said) < 0.1, said
    for clip in placed:
        u = min(got, key=lambda u: wer(clip.text, str(u["text"])))
        assert wer(clip.text, str(u["text"])) < 0.25, (clip.text, u["text"])
        assert abs(float(u["start"]) - clip.start) < 0.3, (suffix, clip, u["start"])  # type: ignore[arg-type]
        assert abs(float(u["end"]) - clip.end) < 0.3, (suffix, clip, u["end"])  # type: ignore[arg-type]
        words = u["words"]
        assert isinstance(words, list) and words and all(0 <= w["confidence"] <= 1 for w in words)


MEMORY_CHILD = """
import resource, sys
from pathlib import Path
from edge_assistant.audio.sources import FileSource
seconds = sum(len(c.samples) for c in FileSource(Path(sys.argv[1])).chunks()) / 16000
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _peak_reading(path: Path) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(path)], capture_output=True, text=True, timeout=600, check=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def _noise_and_silence(seconds: int) -> np.ndarray:
    """48 kHz stereo float32: alternating seconds of speech-loud noise and silence."""
    rng = np.random.default_rng(0)
    second = (rng.standard_normal((48000, 2)) * 0.1).astype(np.float32)
    quiet = np.zeros((48000, 2), dtype=np.float32)
    return np.concatenate([second if i % 2 else quiet for i in range(seconds)])


@pytest.mark.parametrize(("suffix", "seconds"), [(".wav", 60), (".m4a", 30)])
def test_memory_does_not_grow_with_the_length_of_the_file(suffix: str, seconds: int, tmp_path: Path) -> None:
    short = write(_noise_and_silence(seconds), tmp_path / f"short{suffix}")
    long = tmp_path / f"long{suffix}"
    if suffix == ".wav":  # ten times longer, written in blocks
        with soundfile.SoundFile(long, "w", 48000, 2, "PCM_16") as f:
            for _ in range(10):
                f.write(_noise_and_silence(seconds))
    else:
        write(np.concatenate([_noise_and_silence(seconds)] * 10), long)
    (short_s, short_peak), (long_s, long_peak) = _peak_reading(short), _peak_reading(long)
    assert abs(short_s - seconds) < 0.5 and abs(long_s - 10 * seconds) < 0.5
    # the whole long file at 48 kHz stereo is 55-110 MB as int16: reading it must not hold it
    assert long_peak - short_peak < 10 * 2**20, (short_peak / 2**20, long_peak / 2**20)


def _wav_claiming(path: Path, rate: int) -> Path:
    soundfile.write(path, np.zeros(16000 * 60, dtype=np.int16), 16000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    raw[24:28] = rate.to_bytes(4, "little")  # the fmt chunk's sample rate
    raw[28:32] = (rate * 2).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("rate", [1, 100, 10_000_000])
def test_an_absurd_sample_rate_is_refused_at_once_in_one_line(rate: int, tmp_path: Path) -> None:
    path = _wav_claiming(tmp_path / "odd.wav", rate)
    notes = tmp_path / "notes.txt"
    notes.write_text("kept\n")
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "edge_assistant", "transcribe", "-i", str(path), "-o", str(notes)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {path} claims a sample rate of {rate} Hz; audio files are 4 to 384 kHz"
    ]
    assert time.monotonic() - began < 30 and notes.read_text() == "kept\n"


def _silent_video(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_a_video_without_sound_and_a_cut_off_recording_are_one_line_each(
    recording: tuple[np.ndarray, list[Placed]], tmp_path: Path
) -> None:
    video = _silent_video(tmp_path / "call.mp4")
    code, _, err = run("transcribe", "-i", str(video))
    assert code == 1 and err.strip().splitlines() == [f"error: {video} has no audio track"]
    m4a = write(recording[0], tmp_path / "meeting.m4a")
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(m4a.read_bytes()[: m4a.stat().st_size // 2])
    code, _, err = run("transcribe", "-i", str(cut))
    assert code == 1 and len(err.strip().splitlines()) == 1 and str(cut) in err, err


FORMATS = ["txt", "md", "srt", "vtt", "jsonl"]


@pytest.fixture(scope="module")
def uninterrupted(wav: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The notes of whole runs, in every format, windows of 10 s."""
    folder = tmp_path_factory.mktemp("whole")
    out = {}
    for fmt in FORMATS:
        notes = folder / f"notes.{fmt}"
        code, _, err = run("transcribe", "-i", str(wav), "-o", str(notes), "--window", "10")
        assert code == 0, err
        out[fmt] = notes.read_text()
    return out


def _without_session_time(text: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<started>", text)


@pytest.mark.parametrize("fmt", FORMATS)
def test_resume_after_a_power_cut_mid_record_equals_an_uninterrupted_run(
    fmt: str, wav: Path, uninterrupted: dict[str, str], tmp_path: Path
) -> None:
    whole = uninterrupted[fmt]
    notes = tmp_path / f"notes.{fmt}"
    # the file as a power cut may leave it: three records and the start of the fourth
    unit = "\n\n" if fmt in ("srt", "vtt") else "\n"
    parts = whole.split(unit)
    first_record = 2 if fmt == "vtt" else 1  # after the header
    kept = unit.join(parts[: first_record + 3]) + unit
    notes.write_text(kept + parts[first_record + 3][:12])
    code, _, err = run("transcribe", "-i", str(wav), "-o", str(notes), "--window", "10", "--resume")
    assert code == 0, err
    assert "resuming after" in err
    assert _without_session_time(notes.read_text()) == _without_session_time(whole)


def test_resume_after_sigkill_equals_an_uninterrupted_run(
    wav: Path, uninterrupted: dict[str, str], tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    args = [sys.executable, "-m", "edge_assistant", "transcribe", "-i", str(wav), "-o", str(notes), "--window", "10"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, env=_child_env(), preexec_fn=_default_sigint)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (not notes.exists() or notes.read_text().count("\n- `") < 2):
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    partial = notes.read_text()
    assert 2 <= partial.count("\n- `") < 6, partial
    code, _, err = run("transcribe", "-i", str(wav), "-o", str(notes), "--window", "10", "--resume")
    assert code == 0, err
    final = notes.read_text()
    assert final.startswith(partial)
    assert _without_session_time(final) == _without_session_time(uninterrupted["md"])
    assert final.count("## Session") == 1


def test_resume_refuses_another_input_and_a_pipe(wav: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("## Session 2024-01-01 10:00:00 (other.m4a)\n\n- `00:00:01` Hello.\n")
    code, _, err = run("transcribe", "-i", str(wav), "-o", str(notes), "--resume")
    assert code == 2 and "is of other.m4a" in err and len(err.strip().splitlines()) == 1
    assert run("transcribe", "-i", "-", "-o", str(notes), "--resume")[0] == 2
    assert run("transcribe", "-i", str(wav), "-o", str(notes), "--resume", "--overwrite")[0] == 2


def _stderr_of(args: list[str], tty: bool) -> str:
    cmd = [sys.executable, "-m", "edge_assistant", "transcribe", *args]
    if not tty:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_child_env()).stderr
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=secondary, env=_child_env(), preexec_fn=_default_sigint
    )
    os.close(secondary)
    seen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 300)
        if not ready:
            break
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        seen += data
    proc.wait(timeout=60)
    os.close(main)
    return seen.decode(errors="replace")


def test_progress_shows_on_a_terminal_and_not_in_a_pipe_nor_with_quiet_or_json(wav: Path, tmp_path: Path) -> None:
    notes = str(tmp_path / "n.txt")
    on_tty = _stderr_of(["-i", str(wav), "-o", notes, "--overwrite", "--window", "10"], tty=True)
    assert re.search(r"100%\|.*\| 00:\d\d of 00:\d\d audio, [\d.]+x real time", on_tty), on_tty
    piped = _stderr_of(["-i", str(wav), "-o", notes, "--overwrite"], tty=False)
    assert "real time" not in piped and "transcribed" in piped
    quiet = _stderr_of(["-i", str(wav), "-o", notes, "--overwrite", "-q"], tty=True)
    assert "real time" not in quiet and quiet.strip() == ""


def test_json_prints_the_result_only(wav: Path) -> None:
    code, out, err = run("transcribe", "-i", str(wav), "--json")
    assert code == 0 and err == ""
    result = json.loads(out)
    assert result["utterances"] == len(result["notes"]) >= 5
    assert result["audio_seconds"] > 30 and not result["stopped"]
    assert all(n["words"] for n in result["notes"])


def test_vosk_transcribes_a_recording_window_by_window(tmp_path: Path) -> None:
    from tests.speech import synth_espeak, with_silence

    korean = ["안녕하세요. 오늘 날씨가 좋습니다.", "저는 학생입니다."]
    parts = [synth_espeak(text, tmp_path / f"{i}.wav", voice="ko") for i, text in enumerate(korean)]
    mono = with_silence(parts + parts, tmp_path / "ko.wav", gap=3.0)
    notes = tmp_path / "notes.jsonl"
    code, _, err = run("transcribe", "--engine", "vosk", "--language", "ko", "-i", str(mono), "-o", str(notes))
    assert code == 0, err
    got = _utterances(notes)
    assert len(got) == 4, got
    assert all(u["words"] and u["language"] == "ko" for u in got)
    starts = [float(u["start"]) for u in got]  # type: ignore[arg-type]
    assert starts == sorted(starts) and starts[2] > starts[1] + 3
