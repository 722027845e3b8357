"""Notes from long recordings: `transcribe` on a meeting-like file against faster-whisper called directly on the
same file (same threads, compute type, beam, fallback candidates, VAD), peak memory of the command on 10 and 60
minutes of 48 kHz stereo, and word error rates."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio.chunk import RATE
from ..audio.sources import FileSource
from ..modes.transcribe import Transcriber
from ..notes import NoteWriter
from ..stt.whisper import BEST_OF, WhisperRecognizer
from .stt import BENCH_SENTENCES

FILE_RATE = 48000
PEAK_CHILD = """
import sys
from edge_assistant.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    status = open("/proc/self/status").read()
    print("VmHWM", [l.split()[1] for l in status.splitlines() if l.startswith("VmHWM")][0], flush=True)
"""


@dataclass(frozen=True)
class Meeting:
    path: Path
    seconds: float
    reference: str
    """What is said in it, in order."""


@dataclass
class NotesFigures:
    model: str
    threads: int
    audio_s: float
    ours_s: list[float] = field(default_factory=list)
    """Seconds `transcribe` took per round (decoding, windows, recognition, notes written and synced)."""
    direct_s: list[float] = field(default_factory=list)
    """Seconds `WhisperModel.transcribe(file)` took per round, segments consumed."""
    ours_wer: float = 0.0
    direct_wer: float = 0.0
    peak_rss: dict[str, int] = field(default_factory=dict)
    """Peak resident memory of the `transcribe` command by file length (minutes)."""
    clips_wer_file: float = 0.0
    """WER on the bench's speech clips (`bench_speech`): recording mode (long windows)."""
    clips_wer_live: float = 0.0
    """The same clips through the live path (endpointed utterances), as every file was before."""

    @property
    def ratio(self) -> float:
        """Median of ours / direct over interleaved rounds (1.0: the speed of faster-whisper itself)."""
        return statistics.median(o / d for o, d in zip(self.ours_s, self.direct_s, strict=True))

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "threads": self.threads,
            "audio_s": self.audio_s,
            "ours_s": self.ours_s,
            "direct_s": self.direct_s,
            "ours_rtf": statistics.median(self.ours_s) / self.audio_s,
            "direct_rtf": statistics.median(self.direct_s) / self.audio_s,
            "ratio": self.ratio,
            "ours_wer": self.ours_wer,
            "direct_wer": self.direct_wer,
            "peak_rss_bytes": self.peak_rss,
            "clips_wer_file": self.clips_wer_file,
            "clips_wer_live": self.clips_wer_live,
        }


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: edits / reference words."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def _clips() -> list[tuple[str, npt.NDArray[np.float32]]]:
    """The bench sentences spoken by the default voice, at 48 kHz."""
    import soxr

    from ..store import Store
    from ..tts.output import resample
    from ..tts.select import make_speaker

    with tempfile.TemporaryDirectory() as tmp:
        speaker = make_speaker(Store(Path(tmp)), None, "en")
        speaker.open()
        try:
            out = []
            for sentence in BENCH_SENTENCES:
                speech = speaker.synthesize(sentence)
                mono16 = resample(speech.samples, speech.rate, RATE).astype(np.float32) / 32768.0
                out.append((sentence, np.asarray(soxr.resample(mono16, RATE, FILE_RATE), dtype=np.float32)))
        finally:
            speaker.close()
    return out


def make_meeting(path: Path, minutes: float, clips: list[tuple[str, npt.NDArray[np.float32]]]) -> Meeting:
    """A meeting-like recording: the clips in a fixed random order with 0.4-3 s pauses, 48 kHz stereo WAV,
    written in blocks."""
    import soundfile

    rng = np.random.default_rng(0)
    total = int(minutes * 60 * FILE_RATE)
    said: list[str] = []
    with soundfile.SoundFile(path, "w", FILE_RATE, 2, "PCM_16") as f:
        written = 0
        while True:
            text, clip = clips[int(rng.integers(len(clips)))]
            gap = np.zeros(int(FILE_RATE * rng.uniform(0.4, 3.0)), dtype=np.float32)
            block = np.concatenate([gap, clip])
            if written + len(block) > total:
                break
            f.write(np.stack([block, block * 0.9], axis=1))
            written += len(block)
            said.append(text)
        f.write(np.zeros((total - written, 2), dtype=np.float32))
    return Meeting(path, total / FILE_RATE, " ".join(said))


def _ours(recognizer: WhisperRecognizer, meeting: Meeting, notes: Path) -> tuple[float, str]:
    notes.unlink(missing_ok=True)
    mode = Transcriber(recognizer, NoteWriter(notes, "jsonl"))
    with mode:
        began = time.perf_counter()
        for _ in mode.run(FileSource(meeting.path)):
            pass
        elapsed = time.perf_counter() - began
    return elapsed, " ".join(mode.stats.transcript)


def _direct(model: Any, recognizer: WhisperRecognizer, meeting: Meeting) -> tuple[float, str]:
    began = time.perf_counter()
    segments, _ = model.transcribe(
        str(meeting.path),
        language="en" if recognizer.english_only else recognizer.language,
        beam_size=recognizer.beam_size,
        best_of=BEST_OF,
        word_timestamps=recognizer.word_timestamps,
        vad_filter=True,
    )
    text = " ".join(s.text.strip() for s in segments)
    return time.perf_counter() - began, text


def peak_rss_of_transcribe(path: Path, stt_model: str, notes: Path) -> int:
    """Peak resident memory (bytes) of `edge-assistant transcribe` on a file, in a child process of its own."""
    notes.unlink(missing_ok=True)
    args = ["transcribe", "-q", "-i", str(path), "-o", str(notes), "--stt-model", stt_model]
    out = subprocess.run([sys.executable, "-c", PEAK_CHILD, *args], capture_output=True, text=True, check=True)
    return int(out.stdout.split("VmHWM")[-1].split()[0]) * 1024


def _clip_wers(recognizer: WhisperRecognizer, speech: Path) -> tuple[float, float]:
    reference = " ".join(BENCH_SENTENCES)
    with tempfile.TemporaryDirectory() as tmp:
        _, text = _ours(recognizer, Meeting(speech, 0.0, reference), Path(tmp) / "n.jsonl")
    recognizer.open()  # the mode closed it
    live = " ".join(u.text for u in recognizer.stream(FileSource(speech).chunks()) if u.final)
    return wer(reference, text), wer(reference, live)


def measure_notes(
    recognizer: WhisperRecognizer, stt_model: str, speech: Path, rounds: int, minutes: tuple[float, ...]
) -> Iterator[str | NotesFigures]:
    """Status lines as it goes, then the figures. `minutes`: the lengths whose peak memory is measured (the
    first is the file of the speed comparison)."""
    from faster_whisper import WhisperModel

    recognizer.open()
    model = WhisperModel(
        str(recognizer.model_path),
        device="cpu",
        compute_type="int8",
        cpu_threads=recognizer.threads,
        local_files_only=True,
    )
    figures = NotesFigures(recognizer.name, recognizer.threads, 0.0)
    with tempfile.TemporaryDirectory(prefix="edge-bench-notes-") as tmp:
        folder = Path(tmp)
        yield "synthesising the meeting recordings ..."
        clips = _clips()
        meeting = make_meeting(folder / f"meeting-{minutes[0]:g}min.wav", minutes[0], clips)
        figures.audio_s = meeting.seconds
        for i in range(rounds):
            yield f"round {i + 1}/{rounds}: transcribe and faster-whisper directly on {meeting.seconds / 60:g} min ..."
            ours, text = _ours(recognizer, meeting, folder / "notes.jsonl")
            direct, direct_text = _direct(model, recognizer, meeting)
            figures.ours_s.append(ours)
            figures.direct_s.append(direct)
            yield f"  transcribe {ours:.1f} s, faster-whisper directly {direct:.1f} s (ratio {ours / direct:.3f})"
        figures.ours_wer, figures.direct_wer = wer(meeting.reference, text), wer(meeting.reference, direct_text)
        yield "word error rates on the bench's speech clips ..."
        figures.clips_wer_file, figures.clips_wer_live = _clip_wers(recognizer, speech)
        del model
        recognizer.close()
        for length in minutes:
            yield f"peak memory of transcribe on {length:g} min of 48 kHz stereo ..."
            path = folder / f"meeting-{length:g}min.wav"
            if not path.exists():
                make_meeting(path, length, clips)
            figures.peak_rss[f"{length:g}"] = peak_rss_of_transcribe(path, stt_model, folder / "peak.jsonl")
            yield f"  peak RSS {figures.peak_rss[f'{length:g}'] / 2**20:.0f} MiB"
            if length != minutes[0]:
                path.unlink()
    yield figures
