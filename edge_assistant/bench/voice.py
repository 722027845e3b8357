"""Voice figures: how soon a listener hears the answer, and whether the assistant waits for people who pause.

- **Listener latency** (when PulseAudio is here): the live assistant runs as a user starts it, hears the
  questions through a virtual microphone and speaks through a virtual speaker; one recording of the speaker
  holds question and answer on one clock (the microphone is the speaker's monitor, as a room would loop it),
  so the figure is from the last loud sample of the question to the first loud sample of the answer.
- **In-process latency**: the same questions paced in real time through the assistant in this process, from
  the question's true end (known from the clip) to the first sentence's audio being ready; with its parts.
- **False cuts**: questions with a pause inside (0.35, 0.5, 0.65 s) where people hesitate ("Set a timer
  for ... ten minutes"): the share answered half-way. Pauses after a phrase that is already a whole request
  ("Tell me a joke ... about cats") are counted apart: no listener can tell those from the end.

The conversation is kept across the questions, as a user's would be.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio.chunk import RATE
from ..audio.sources import FileSource
from ..llm.backend import Backend
from ..llm.conversation import Conversation
from ..llm.options import Message
from ..modes.assistant import EAGER_WORDS, OPTIONS, Assistant
from ..modes.draft import Draft, reads_finished
from ..modes.events import Answered, Heard
from ..modes.turns import Turn
from ..modes.turntaking import TurnEnd
from ..settings import AssistantSettings
from ..stt.recognizer import Recognizer
from ..text import SentenceSplitter
from ..tts.delivery import Mouth, NullSink, WavSink
from ..tts.speaker import Speaker

QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What is the tallest mountain in the world?",
    "Who wrote Romeo and Juliet?",
    "What colour is the sky on a clear day?",
    "How many days are there in a week?",
]
HESITATIONS = [
    ("Set a timer for", "ten minutes."),
    ("What is the capital of", "Australia?"),
    ("Remind me to call my", "sister tomorrow."),
    ("Can you tell me the", "time in London?"),
    ("Turn off the lights in the", "kitchen."),
    ("What is the weather like in", "Paris today?"),
    ("Play some music by", "the Beatles."),
    ("Who is the author of", "Hamlet?"),
    # after words that a recognizer may complete on its own ("Remind me to buy me.", "How do I make it?")
    ("Remind me to buy", "milk on the way home."),
    ("What is the difference between", "a frog and a toad?"),
    ("Can you recommend a good", "book about history?"),
    ("Send a message to", "Anna saying I am late."),
    ("How do I make", "pancakes?"),
    ("Add eggs and", "butter to my shopping list."),
    ("Wake me up at", "seven tomorrow."),
    ("How far is it from here to", "the station?"),
    ("Who was the first person to walk on", "the moon?"),
    ("I need a recipe with", "chicken and rice."),
    ("What is the population of", "Japan?"),
    ("Translate good morning into", "Spanish."),
]
"""A pause where people stop to think: after a word that needs more."""
WHOLE_FIRST = [("Tell me a joke", "about cats."), ("What time is it", "in Tokyo?")]
"""A pause after words that already make a whole request."""
PAUSES = (0.35, 0.5, 0.65)
PAUSED_CUT = "gap-1frame"
"""Where the pause goes in a paused question (`PiperSpeaker.synthesize_split`): with the questions, in the cached
file's name, so a change to either makes new material."""
GAP = 3.0
"""Seconds of silence after each question (the answer's time)."""
LOUD = 300
"""Sample level (of 32768) above which a sample counts as sound."""
PARTS = ("turn_end_s", "ttft_s", "first_sentence_s", "tts_s")


@dataclass(frozen=True)
class Clip:
    """A question placed in a WAV: where its speech starts and ends (seconds)."""

    text: str
    start: float
    end: float
    pieces: int = 1
    """How many spoken pieces it has (two for a question with a pause inside)."""


@dataclass
class VoiceFigures:
    stt: str
    llm: str
    voice: str
    in_process: list[float] = field(default_factory=list)
    """True end of the question -> the first sentence's audio ready, per answered question."""
    parts: dict[str, float] = field(default_factory=dict)
    """Medians of the turns' own timings (from the endpointer's end of speech)."""
    listener: list[float] = field(default_factory=list)
    """Last loud sample of the question -> first loud sample of the answer, on the speaker."""
    listener_note: str = ""
    """Why there is no listener figure, when there is none."""
    hesitation_cuts: int = 0
    hesitations: int = 0
    whole_first_cuts: int = 0
    whole_firsts: int = 0
    cut: list[str] = field(default_factory=list)
    """The paused questions answered half-way, as the turns they were heard in."""
    drafted: int = 0
    """Answers begun during the silence before their turn ended (their parts are left out of `parts`)."""
    draft_stops: list[float] = field(default_factory=list)
    """Seconds from dropping an answer begun too soon (the voice came back) to its having stopped."""


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_s": statistics.median(ordered), "p95_s": p95, "worst_s": ordered[-1], "n": len(ordered)}


def as_dict(figures: VoiceFigures) -> dict[str, Any]:
    data = asdict(figures)
    data["in_process_stats"] = _stats(figures.in_process)
    data["listener_stats"] = _stats(figures.listener)
    data["hesitation_cut_rate"] = figures.hesitation_cuts / figures.hesitations if figures.hesitations else 0.0
    data["draft_stop_stats"] = _stats(figures.draft_stops)
    return data


# -- material ----------------------------------------------------------------------------------------------------
def _loud_span(samples: npt.NDArray[np.int16]) -> tuple[int, int]:
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > LOUD)
    return (int(loud[0]), int(loud[-1]) + 1) if len(loud) else (0, 0)


def _say(speaker: Speaker, text: str) -> npt.NDArray[np.int16]:
    from ..tts.output import resample

    speech = speaker.synthesize(text)
    return resample(speech.samples, speech.rate, RATE)


def _say_with_pause(speaker: Speaker, first: str, pause: float, second: str) -> list[npt.NDArray[np.int16]]:
    """The whole sentence in one breath with `pause` seconds of silence after the words of `first` (a Piper voice
    keeps the sentence's flow across it); other voices say the two parts apart."""
    from ..tts.output import resample
    from ..tts.piper import PiperSpeaker

    silence = np.zeros(int(RATE * pause), dtype=np.int16)
    if not isinstance(speaker, PiperSpeaker):
        return [_say(speaker, first), silence, _say(speaker, second)]
    speech, cut = speaker.synthesize_split(first, second)
    return [
        resample(speech.samples[:cut], speech.rate, RATE),
        silence,
        resample(speech.samples[cut:], speech.rate, RATE),
    ]


def build_wav(speaker: Speaker, items: Sequence[str | tuple[str, float, str]], path: Path) -> list[Clip]:
    """Questions (plain, or first part, pause, second part) one after the other, GAP seconds apart, at 16 kHz;
    made once and cached with a JSON of where each question's speech is."""
    index = path.with_suffix(".json")
    texts = [item if isinstance(item, str) else f"{item[0]} {item[2]}" for item in items]
    if path.exists() and index.exists():
        cached = [Clip(**c) for c in json.loads(index.read_text())]
        if [c.text for c in cached] == texts:  # made for these questions (the file's name may not say)
            return cached
    import soundfile

    speaker.open()
    pieces = [np.zeros(RATE // 2, dtype=np.int16)]
    clips = []
    at = len(pieces[0])
    for item in items:
        if isinstance(item, str):
            parts, text = [_say(speaker, item)], item
        else:
            first, pause, second = item
            text = f"{first} {second}"
            parts = _say_with_pause(speaker, first, pause, second)
        audio = np.concatenate(parts)
        lo, hi = _loud_span(audio)
        clips.append(Clip(text, (at + lo) / RATE, (at + hi) / RATE, len(parts) // 2 + 1))
        pieces += [audio, np.zeros(int(RATE * GAP), dtype=np.int16)]
        at += len(audio) + int(RATE * GAP)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    soundfile.write(str(tmp), np.concatenate(pieces), RATE, subtype="PCM_16")
    tmp.replace(path)
    index.write_text(json.dumps([asdict(c) for c in clips]))
    return clips


# -- in process --------------------------------------------------------------------------------------------------
def measure_in_process(
    recognizer: Recognizer, backend: Backend, speaker: Speaker, cache: Path, figures: VoiceFigures
) -> None:
    """The questions paced in real time through the assistant in this process (answers to a WAV file)."""
    wav = cache / f"voice-questions-{speaker.name}.wav"
    clips = build_wav(speaker, QUESTIONS, wav)
    turns: list[tuple[Turn, float]] = []
    with Assistant(recognizer, backend, Mouth(speaker, WavSink(cache / "voice-answers.wav")), live=False) as bot:
        for event in bot.hear(FileSource(wav, realtime=True).chunks()):
            if not isinstance(event, Heard):
                continue
            clip = min(clips, key=lambda c: abs(c.end - event.utterance.end))
            spoke = bot.heard_at(clip.end)
            for answer in bot.answer(event.utterance):
                if isinstance(answer, Answered) and spoke is not None and bot.mouth.first_audio is not None:
                    turns.append((answer.turn, bot.mouth.first_audio - spoke))
    figures.in_process = [seconds for _, seconds in turns]
    figures.drafted = sum(t.drafted for t, _ in turns)
    if plain := [t for t, _ in turns if not t.drafted]:
        figures.parts = {p: statistics.median(getattr(t.timings, p) for t in plain) for p in PARTS}


DRAFT_QUESTION = "who wrote Romeo and Juliet"
DROP_AFTER = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
"""Seconds after its start at which a draft is dropped: in its prompt, its first sentence, its first piece."""


def measure_draft_stops(backend: Backend, speaker: Speaker, figures: VoiceFigures) -> None:
    """How soon an answer begun during a pause stops when the voice comes back: the recognition of the rest of
    the sentence starts at the next pause (0.06 s of silence after more speech at the soonest) and shares the
    two cores with it until then."""
    mouth = Mouth(speaker, NullSink())
    conversation = Conversation(backend, AssistantSettings().system, OPTIONS)
    mouth.open()
    backend.open()
    try:
        backend.warm(conversation.prefix)
        for delay in DROP_AFTER:
            draft = Draft(conversation, mouth, DRAFT_QUESTION, SentenceSplitter(eager_words=EAGER_WORDS))
            time.sleep(delay)
            dropped = time.perf_counter()
            draft.drop()
            draft.join()
            figures.draft_stops.append(time.perf_counter() - dropped)
    finally:
        mouth.close()
        backend.close()


def count_false_cuts(
    recognizer: Recognizer, speaker: Speaker, cache: Path, figures: VoiceFigures, backend: Backend | None = None
) -> None:
    """Run the paused questions through the recognizer with the assistant's turn-taking; a question heard as
    more than one turn was cut. With `backend`, words left unclosed are read by the language model as the
    assistant's drafts read them (those it reads as finished end the turn after a shorter silence)."""
    items: list[tuple[str, float, str]] = [(a, p, b) for p in PAUSES for a, b in HESITATIONS + WHOLE_FIRST]
    digest = hashlib.sha256(repr((PAUSED_CUT, items)).encode()).hexdigest()[:12]
    wav = cache / f"voice-paused-{digest}-{speaker.name}.wav"
    clips = build_wav(speaker, items, wav)
    settings = AssistantSettings()
    turn_end = TurnEnd(settings.turn)
    if backend is not None:
        backend.open()
        reader, system = backend, Message("system", settings.system)

        def read(heard: str) -> None:
            said = (turn_end.waiting_on or heard).strip()
            if reads_finished(reader, [system, Message("user", said)]):
                turn_end.meant()

        turn_end.on_likely_end = read
    recognizer.turn_end = turn_end
    recognizer.open()
    heard = [u for u in recognizer.stream(FileSource(wav).chunks()) if u.final]
    whole = {f"{a} {b}" for a, b in WHOLE_FIRST}
    for clip, (_, pause, _) in zip(clips, items, strict=True):
        turns = [u.text for u in heard if clip.start - 0.3 <= u.end <= clip.end + GAP / 2]
        cut = len(turns) > 1
        if cut:
            kind = " (a whole request before it)" if clip.text in whole else ""
            figures.cut.append(f"{pause:.2f} s{kind}: " + " | ".join(turns))
        if clip.text in whole:
            figures.whole_firsts += 1
            figures.whole_first_cuts += cut
        else:
            figures.hesitations += 1
            figures.hesitation_cuts += cut


# -- what a listener hears ---------------------------------------------------------------------------------------
def measure_listener(
    model_args: list[str], speaker: Speaker, cache: Path, figures: VoiceFigures, timeout: float = 60.0
) -> None:
    """The live assistant (a child process, as a user starts it) through a private PulseAudio server."""
    from .pulse import SPEAKER, VirtualAudio, VirtualAudioError

    if (reason := VirtualAudio.available()) is not None:
        figures.listener_note = f"no listener figure: {reason}"
        return
    clips = [
        build_wav(speaker, [q], cache / f"voice-listener-{i}-{speaker.name}.wav")[0] for i, q in enumerate(QUESTIONS)
    ]
    log, errors = cache / "voice-listener-turns.jsonl", cache / "voice-listener-stderr.log"
    log.unlink(missing_ok=True)
    try:
        with VirtualAudio() as virtual:
            env = {**virtual.env, "PULSE_SOURCE": f"{SPEAKER}.monitor"}
            recording = virtual.record_speaker(cache / "voice-listener.wav")
            began = time.monotonic()
            child = start_assistant(env, log, model_args, subprocess.DEVNULL, errors.open("wb"))
            try:
                _wait_for(child, errors, "listening", timeout)
                placed: list[tuple[Clip, float]] = []
                for i, clip in enumerate(clips):
                    placed.append((clip, time.monotonic() - began))
                    virtual.play_into_mic(cache / f"voice-listener-{i}-{speaker.name}.wav", device=SPEAKER)
                    _wait_turns(log, i + 1, timeout)
                    time.sleep(1.0)
            finally:
                child.terminate()
                child.communicate(timeout=30)
            heard = recording.stop()
    except VirtualAudioError as exc:
        figures.listener_note = f"no listener figure: {exc}"
        return
    figures.listener = _gaps(heard, placed)


def start_assistant(
    env: dict[str, str], log: Path, args: Sequence[str], stdout: Any, stderr: Any
) -> subprocess.Popen[bytes]:
    """The live assistant as a user starts it (`assistant --device default`), in a process of its own with the
    default SIGINT, its turns logged to `log`."""
    from .pulse import default_signals

    return subprocess.Popen(
        [sys.executable, "-m", "edge_assistant", "assistant", "--device", "default", "--log", str(log), *args],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        preexec_fn=default_signals,
    )


def _wait_for(child: subprocess.Popen[bytes], errors: Path, marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while marker not in (seen := errors.read_text(errors="replace")):
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the assistant did not start listening: {seen[-300:]}")
        time.sleep(0.1)


def _wait_turns(log: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (log.exists() and len(log.read_text().splitlines()) >= count):
        if time.monotonic() > deadline:
            raise RuntimeError("the assistant did not answer in time")
        time.sleep(0.05)


def _gaps(recording: Path, placed: list[tuple[Clip, float]]) -> list[float]:
    """From each question's last loud sample to the answer's first, in the recording of the speaker."""
    import soundfile

    audio, rate = soundfile.read(str(recording), dtype="int16")
    audio = audio if audio.ndim == 1 else audio[:, 0]
    loud = np.abs(audio.astype(np.int32)) > LOUD
    gaps = []
    for clip, played_at in placed:
        # the question's first sound after it was sent, then its end by the clip's own length
        search = int(played_at * rate)
        onset = np.flatnonzero(loud[search:])
        if not len(onset):
            continue
        begin = search + int(onset[0])
        end = begin + int((clip.end - clip.start) * rate)
        after = np.flatnonzero(loud[end + int(0.05 * rate) :])
        if len(after):
            gaps.append((int(after[0]) + int(0.05 * rate)) / rate)
    return gaps


def measure_voice(
    recognizer: Recognizer,
    backend: Backend,
    speaker: Speaker,
    cache: Path,
    model_args: list[str],
    listener: bool = True,
) -> VoiceFigures:
    figures = VoiceFigures(recognizer.name, backend.name, speaker.name)
    count_false_cuts(recognizer, speaker, cache, figures, backend)
    measure_in_process(recognizer, backend, speaker, cache, figures)
    measure_draft_stops(backend, speaker, figures)
    if listener:
        measure_listener(model_args, speaker, cache, figures)
    return figures
