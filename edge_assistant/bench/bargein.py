"""Barge-in by voice, measured in a virtual room: the live assistant with echo cancellation hears its own voice
come back through the microphone (the speaker looped back at half level) and a person who talks over it.

- **Delay**: a long answer is asked for; while it is being spoken a new question is played over it. The turn log
  says how long from the onset of that speech to the answer falling silent (`barge_in_s`, the speaker's output
  latency included), and whether the new question was then answered.
- **False interruptions**: short questions answered aloud with nobody talking over them: any answer that
  stopped itself was interrupted by its own voice.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..modes.turns import similar
from ..tts.speaker import Speaker
from .voice import QUESTIONS, _stats, _wait_for, build_wav, start_assistant

STORIES = [
    "Tell me a very long story about a dragon and a knight.",
    "Describe in detail a long walk through a forest in autumn.",
    "Tell me a long story about a ship lost at sea.",
]
"""Requests for an answer long enough to be talked over; none with a pause after words that already make a
request ("... in autumn, in detail."), which turn-taking rightly answers at the pause (the voice bench counts
those apart)."""
OVER = [
    ("What is the capital of France?", "france"),
    ("How many legs does a spider have?", "spider"),
    ("Who wrote Romeo and Juliet?", "juliet"),
]
"""What the person says over each answer, and a word its transcript must hold."""
SPEAKING = 1.5
"""Seconds the answer has been heard before the person talks over it."""
ASKED = 0.8
"""Similarity above which a transcript is one of the questions played (a person spoke)."""


@dataclass
class BargeInFigures:
    delays: list[float] = field(default_factory=list)
    """Onset of the speech over the answer -> the answer silent, per interruption that was heard."""
    interruptions: int = 0
    """Times somebody talked over an answer."""
    answered_after: int = 0
    """Of those, the times the new question was answered."""
    false_interruptions: int = 0
    """Answers stopped by the assistant's own voice (what followed was not a person's question)."""
    answers: int = 0
    """Answers not stopped by a person."""
    echo_turns: int = 0
    """Turns whose question was the assistant's own voice, heard back through the echo canceller."""
    note: str = ""


def as_dict(figures: BargeInFigures) -> dict[str, Any]:
    return {**asdict(figures), "delay_stats": _stats(figures.delays)}


def _turns(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def measure_barge_in(model_args: list[str], speaker: Speaker, cache: Path, timeout: float = 120.0) -> BargeInFigures:
    from .pulse import VirtualAudio, VirtualAudioError

    figures = BargeInFigures()
    if (reason := VirtualAudio.available()) is not None:
        figures.note = f"no barge-in figures: {reason}"
        return figures

    def wav(kind: str, i: int, text: str) -> Path:
        path = cache / f"bargein-{kind}-{i}-{speaker.name}.wav"
        build_wav(speaker, [text], path)
        return path

    stories = [wav("story", i, text) for i, text in enumerate(STORIES)]
    overs = [wav("over", i, text) for i, (text, _) in enumerate(OVER)]
    questions = [wav("question", i, text) for i, text in enumerate(QUESTIONS)]
    log, out, errors = cache / "bargein-turns.jsonl", cache / "bargein-stdout.txt", cache / "bargein-stderr.log"
    log.unlink(missing_ok=True)
    try:
        with VirtualAudio() as room:
            room.loop_back(50)
            child = start_assistant(room.env, log, ["--echo-cancel", *model_args], out.open("wb"), errors.open("wb"))
            try:
                _wait_for(child, errors, "listening", timeout)
                for story, over, (text, _) in zip(stories, overs, OVER, strict=True):
                    before, printed = len(_turns(log)), out.stat().st_size
                    room.play_into_mic(story)
                    _wait_speaking(out, printed, child, timeout)
                    time.sleep(SPEAKING)
                    room.play_into_mic(over)
                    _settle(log, timeout, partial(_asked_after, before, text))
                for question in questions:
                    before = len(_turns(log))
                    room.play_into_mic(question)
                    _settle(log, timeout, partial(_asked_after, before, None))
                _score(_turns(log), figures)
            finally:
                child.terminate()
                child.communicate(timeout=30)
    except (VirtualAudioError, RuntimeError) as exc:
        figures.note = f"barge-in measurement stopped early ({exc}); figures from the turns it took"
        _score(_turns(log), figures)
    return figures


def _settle(log: Path, timeout: float, answered: Callable[[list[dict[str, object]]], bool], quiet: float = 3.0) -> None:
    """Until the turns logged say the question just played was `answered` (a turn is logged once its answer has
    been spoken or stopped), then until the log has not changed for `quiet` seconds (whatever followed, done):
    the next question is played into silence, not over an answer still being spoken."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while not answered(_turns(log)) or time.monotonic() - since < quiet:
        size = log.stat().st_size if log.exists() else 0
        if size != last:
            last, since = size, time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError("the assistant did not settle")
        time.sleep(0.1)


def _asked_after(before: int, question: str | None, turns: list[dict[str, object]]) -> bool:
    """A turn after the first `before` was taken on `question` (None: on anything)."""
    return any(question is None or _is(turn, question) for turn in turns[before:])


def _is(turn: dict[str, object], question: str) -> bool:
    """The turn's transcript is `question` as heard (its key word, or a sentence of it alike)."""
    heard = str(turn.get("transcript", ""))
    keys = [k for q, k in OVER if q == question]
    return any(k in heard.lower() for k in keys) or _alike(heard, question)


def _alike(transcript: str, text: str) -> bool:
    """Some sentence of the transcript is `text` as heard (Whisper may repeat a sentence, or spell "color"), or
    its end heard as a turn of its own after a pause ("... in autumn, | and detail.")."""
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", transcript) if s.strip()] or [transcript]
    heard = transcript.split()
    ending = " ".join(text.split()[-len(heard) :])
    tail = len(heard) >= 2 and similar(transcript, ending) >= ASKED  # one word alike says nothing
    return tail or any(similar(s, text) >= ASKED for s in sentences)


def _from_a_person(transcript: str) -> bool:
    """The transcript is one of the questions played (a person spoke), not the assistant's own voice."""
    heard = transcript.lower()
    return any(k in heard for _, k in OVER) or any(_alike(heard, q) for q in [*QUESTIONS, *STORIES])


def _score(turns: list[dict[str, object]], figures: BargeInFigures) -> None:
    """Each turn that stopped was stopped by what was heard next: a person (one of the questions played over
    it) or its own voice leaking through the echo canceller (anything else)."""
    for turn, after in itertools.pairwise(turns):
        heard = str(after.get("transcript", ""))
        if not turn.get("interrupted"):
            figures.answers += 1
            continue
        if _from_a_person(heard):
            figures.interruptions += 1
            timings = turn.get("timings")
            delay = timings.get("barge_in_s") if isinstance(timings, dict) else None
            if isinstance(delay, (int, float)) and delay > 0:
                figures.delays.append(float(delay))
            figures.answered_after += any(k in heard.lower() for _, k in OVER)
        else:
            figures.false_interruptions += 1
            figures.answers += 1
    figures.echo_turns = sum(not _from_a_person(str(t.get("transcript", ""))) for t in turns)


def _wait_speaking(out: Path, start: int, child: subprocess.Popen[bytes], timeout: float) -> None:
    """Until a first sentence of an answer printed after `start` bytes of the output is complete (and so being
    spoken); counted from before the request was played, as the answer may be printed whole while it plays."""
    deadline = time.monotonic() + timeout
    while ". " not in out.read_bytes()[start:].decode(errors="replace"):
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the assistant did not start its answer")
        time.sleep(0.05)
