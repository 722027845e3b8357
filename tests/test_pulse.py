"""The PulseAudio virtual microphone and speaker (edge_assistant/bench/pulse.py), seen through sounddevice."""

from __future__ import annotations

import select
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.bench.pulse import RATE, VirtualAudio, default_signals

pytestmark = [pytest.mark.pulseaudio, pytest.mark.timeout(90)]

# Records SECONDS from ALSA device "default" into argv[1] (.npy), printing the monotonic start time first.
RECORD = """
import sys, time
import numpy as np
import sounddevice as sd
out, seconds, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
stream = sd.InputStream(device="default", samplerate=rate, channels=1, dtype="int16")
frames = []
stream.start()
print(time.monotonic(), flush=True)
remaining = int(seconds * rate)
while remaining > 0:
    data, _ = stream.read(min(remaining, 1600))
    frames.append(data.copy())
    remaining -= len(data)
stream.stop()
stream.close()
np.save(out, np.concatenate(frames)[:, 0])
"""

# Plays argv[1] (.npy, int16 mono) to ALSA device "default".
PLAY = """
import sys
import numpy as np
import sounddevice as sd
sd.play(np.load(sys.argv[1]), samplerate=int(sys.argv[2]), device="default", blocking=True)
"""


LEAD = 0.5


def chirp(seconds: float = 1.0, lead: float = LEAD, tail: float = 0.5) -> np.ndarray:
    """A 300 Hz -> 3 kHz sweep between silences: unambiguous to align, unlike a pure tone."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0, f1 = 300.0, 3000.0
    sweep = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))
    signal = np.round(0.5 * 32767 * sweep).astype(np.int16)
    return np.concatenate([np.zeros(int(lead * RATE), np.int16), signal, np.zeros(int(tail * RATE), np.int16)])


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2")


def locate(recording: np.ndarray, signal: np.ndarray) -> tuple[int, float]:
    """Where `signal` starts in `recording` (FFT cross-correlation) and how well it matches there (cosine, 0..1)."""
    rec, sig = recording.astype(np.float64), signal.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(rec) + len(sig))))
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(sig, size)), size)[: len(rec) - len(sig) + 1]
    start = int(np.argmax(corr))
    window = rec[start : start + len(sig)]
    match = float(window @ sig / (np.linalg.norm(window) * np.linalg.norm(sig) + 1e-9))
    return start, match


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


def python(code: str, *args: str, env: dict[str, str], stdout: int | None = None) -> subprocess.Popen[str]:
    """Run `code` in a fresh interpreter: its sounddevice/PortAudio initialises with the virtual server's env."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        text=True,
        stdout=stdout,
        stderr=subprocess.PIPE,
        preexec_fn=default_signals,
    )


def test_sounddevice_sees_pulse_devices(virtual: VirtualAudio) -> None:
    code = "import sounddevice as sd; "
    code += "d = sd.query_devices(sd.default.device[0]); print(d['name'], d['max_input_channels'])"
    listing = subprocess.run(
        [sys.executable, "-c", code], env=virtual.env, capture_output=True, text=True, timeout=30, check=True
    )
    name, inputs = listing.stdout.split()
    assert name == "default" and int(inputs) > 0, listing.stdout
    assert "vmic" in virtual.pactl("get-default-source") and "vspeaker" in virtual.pactl("get-default-sink")


def test_microphone_hears_what_the_test_plays(virtual: VirtualAudio, tmp_path: Path) -> None:
    sound = chirp()
    wav = write_wav(tmp_path / "chirp.wav", sound)
    out = tmp_path / "heard.npy"
    seconds = 3.0
    recorder = python(RECORD, str(out), str(seconds), str(RATE), env=virtual.env, stdout=subprocess.PIPE)
    try:
        assert recorder.stdout is not None
        ready, _, _ = select.select([recorder.stdout], [], [], 30)
        assert ready, "the recorder did not start within 30 s"
        line = recorder.stdout.readline()
        assert line, recorder.communicate(timeout=30)[1]
        started = float(line)
        played = time.monotonic()
        virtual.play_into_mic(wav, wait=True, timeout=15)
        _, stderr = recorder.communicate(timeout=30)
        assert recorder.returncode == 0, stderr
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait(5)
    heard = np.load(out)
    assert len(heard) == int(seconds * RATE)

    lead = int(LEAD * RATE)
    signal = sound[lead : lead + RATE]
    start, match = locate(heard, signal)
    offset = (started + start / RATE) - (played + lead / RATE)
    print(f"signal at {start / RATE:.3f} s of the recording, {offset * 1000:.0f} ms after paplay started + its lead")
    assert match > 0.99, f"match {match:.4f} at {start}"
    # Same rate, format and channels all the way: the microphone delivers the file's samples unchanged.
    assert np.array_equal(heard[start : start + len(signal)], signal)
    assert not heard[:start].any() and not heard[start + len(signal) :].any()
    assert -0.05 < offset < 0.5, f"signal {offset:.3f} s after paplay started"


def test_speaker_records_what_the_program_plays(virtual: VirtualAudio, tmp_path: Path) -> None:
    sound = chirp()
    source = tmp_path / "answer.npy"
    np.save(source, sound)
    recording = virtual.record_speaker(tmp_path / "speaker.wav")
    player = python(PLAY, str(source), str(RATE), env=virtual.env)
    try:
        _, stderr = player.communicate(timeout=30)
        assert player.returncode == 0, stderr
    finally:
        if player.poll() is None:
            player.kill()
            player.wait(5)
    time.sleep(0.3)
    heard = read_wav(recording.stop())

    signal = sound[int(LEAD * RATE) : int(LEAD * RATE) + RATE]
    assert len(heard) >= len(signal), f"only {len(heard)} samples recorded"
    start, match = locate(heard, signal)
    assert match > 0.99, f"match {match:.4f} at {start}"
    # sounddevice -> ALSA pulse plugin -> null sink -> parecord, all 16 kHz mono s16: the samples arrive unchanged.
    assert np.array_equal(heard[start : start + len(signal)], signal)
    assert np.array_equal(heard[start : start + len(signal)], signal)
