"""Answers begun while a turn may be ending (modes/draft.py): used when the turn ends with the words drafted on,
dropped without a trace when the voice comes back."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterable, Iterator, Sequence

import numpy as np
import pytest

from edge_assistant.audio.chunk import RATE, AudioChunk
from edge_assistant.llm.conversation import Conversation
from edge_assistant.llm.local import LlamaCppBackend
from edge_assistant.llm.options import GenerationOptions, Message, Reply
from edge_assistant.modes.assistant import Assistant
from edge_assistant.modes.draft import MEANT, Draft
from edge_assistant.modes.events import Answered
from edge_assistant.modes.turntaking import TurnEnd
from edge_assistant.settings import AssistantSettings
from edge_assistant.stt.types import Utterance
from edge_assistant.text import SentenceSplitter
from edge_assistant.tts.delivery import Mouth, NullSink
from edge_assistant.tts.speaker import Speech

pytestmark = pytest.mark.usefixtures("no_network")
SILENCE = 0.3
"""Seconds the fake recognizer waits between the words at a pause and the end of the turn."""


class Source:
    name, live, duration = "fake", False, None

    def check(self) -> None: ...

    def chunks(self) -> Generator[AudioChunk, None, None]:
        for i in range(30):
            yield AudioChunk(np.zeros(RATE // 20, dtype=np.int16), i / 20)

    def close(self) -> None: ...


class Recognizer:
    """At chunk 10, words at a pause (`waiting`); after SILENCE, `resumed` when `resumes`; then `final`."""

    name, engine, streaming = "fake", "fake", False
    turn_end: TurnEnd | None = None

    def __init__(self, log: list[str], at_pause: str, final: str, resumes: bool = False, said: str = "") -> None:
        self.log, self.at_pause, self.final, self.resumes = log, at_pause, final, resumes
        self.said = said or at_pause
        """`at_pause` without the words written into the silence."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def stream(self, chunks: Iterable[AudioChunk]) -> Iterator[Utterance]:
        assert self.turn_end is not None
        for i, chunk in enumerate(chunks):
            if i == 10:
                self.log.append("pause")
                self.turn_end.waiting(self.at_pause, self.said)
                time.sleep(SILENCE)
                if self.turn_end(self.said, 0.6, punctuated=True):
                    self.log.append("over after 0.6 s")
                if self.resumes:
                    self.log.append("voice again")
                    self.turn_end.resumed()
                self.log.append("turn over")
                yield Utterance(self.final, 0.0, chunk.end)


class Backend:
    """Answers word by word; logs each answer it starts and whether its stream was ended."""

    name, context_length = "fake", 2048

    def __init__(self, log: list[str], answer: str = "Shakespeare wrote it. In the 1590s.", ends: float = 0.0) -> None:
        self.log, self.answer, self.ends = log, answer, ends
        self.closed: list[str] = []

    def ends_here(self, messages: Sequence[Message]) -> float:
        """How finished the words read: `ends`, but nothing for "Remind me to buy" (as SmolLM2 reads it; it reads
        "Remind me to buy me." as finished)."""
        return 0.0 if messages[-1].content == "Remind me to buy" else self.ends

    def open(self) -> None: ...

    def close(self) -> None: ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m.content.split()) for m in messages)

    def warm(self, prefix: Sequence[Message]) -> float:
        return 0.0

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions, reply: Reply
    ) -> Generator[str, None, None]:
        self.log.append(f"answer {messages[-1].content}")
        try:
            for word in self.answer.split(" "):
                reply.text += word + " "
                yield word + " "
        finally:
            self.closed.append(messages[-1].content)


class Voice:
    name, language, rate = "fake", "en", 16000

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def open(self) -> None: ...

    def close(self) -> None: ...

    def synthesize(self, text: str) -> Speech:
        return Speech(np.full(1600, 3000, dtype=np.int16), self.rate, text)

    def synthesize_stream(self, text: str) -> Iterator[Speech]:
        self.log.append(f"voice {text}")
        time.sleep(0.02)
        yield self.synthesize(text)


class Sink(NullSink):
    def __init__(self) -> None:
        self.played: list[str] = []

    def play(self, speech: Speech, stop: threading.Event) -> bool:
        self.played.append(speech.text)
        return True


def _run(recognizer: Recognizer, log: list[str], ends: float = 0.0) -> tuple[Assistant, Backend, Sink, list[Answered]]:
    backend, sink = Backend(log, ends=ends), Sink()
    assistant = Assistant(recognizer, backend, Mouth(Voice(log), sink), AssistantSettings(), live=False)
    with assistant:
        answered = [e for e in assistant.run(Source()) if isinstance(e, Answered)]
    return assistant, backend, sink, answered


def test_an_answer_begun_at_the_pause_is_the_one_spoken() -> None:
    log: list[str] = []
    question = "who wrote Romeo and Juliet"
    assistant, backend, sink, answered = _run(Recognizer(log, question, question), log)
    # the model and the voice began during the silence, before the turn was over; nothing was done twice
    assert log == ["pause", f"answer {question}", "voice Shakespeare wrote it.", "turn over", "voice In the 1590s."]
    assert sink.played == ["Shakespeare wrote it.", "In the 1590s."]
    assert [t.answer.strip() for t in (a.turn for a in answered)] == [backend.answer]
    assert assistant.conversation.turns == [Message("user", question), Message("assistant", backend.answer + " ")]


def test_words_the_model_reads_as_finished_end_the_turn_after_a_shorter_silence() -> None:
    log: list[str] = []
    question = "who wrote Romeo and Juliet"
    _run(Recognizer(log, question, question), log, ends=0.05)
    assert log[:3] == ["pause", f"answer {question}", "voice Shakespeare wrote it."]
    assert "over after 0.6 s" in log  # not before the full silence (0.9 s) otherwise, as in the test above


def test_the_model_reads_the_words_said_not_one_written_into_the_silence() -> None:
    log: list[str] = []
    heard = "Remind me to buy me."
    _run(Recognizer(log, heard, "Remind me to buy milk.", said="Remind me to buy"), log, ends=0.05)
    assert "over after 0.6 s" not in log
    log.clear()
    _run(Recognizer(log, "Remind me to buy milk", "Remind me to buy milk"), log, ends=0.05)
    assert "over after 0.6 s" in log  # words said that the model reads as finished


@pytest.mark.parametrize("resumes", [True, False])
def test_a_draft_on_words_the_turn_did_not_end_with_leaves_no_trace(resumes: bool) -> None:
    """Whether the voice came back (the draft stops then) or the final words differ (it stops at the end)."""
    log: list[str] = []
    final = "who wrote Romeo and Juliet and when"
    assistant, backend, sink, answered = _run(Recognizer(log, "who wrote Romeo", final, resumes), log)
    assert log[:2] == ["pause", "answer who wrote Romeo"]
    assert backend.closed[0] == "who wrote Romeo"  # its stream was ended
    assert log[-3:] == [f"answer {final}", "voice Shakespeare wrote it.", "voice In the 1590s."]
    assert assistant.conversation.turns == [Message("user", final), Message("assistant", backend.answer + " ")]
    assert sink.played == ["Shakespeare wrote it.", "In the 1590s."]
    assert [a.turn.transcript for a in answered] == [final]


def test_no_draft_on_words_that_need_more() -> None:
    log: list[str] = []
    _run(Recognizer(log, "set a timer for", "set a timer for ten minutes"), log)
    assert log[:3] == ["pause", "turn over", "answer set a timer for ten minutes"]


@pytest.mark.slow
def test_the_model_reads_a_finished_request_apart_from_an_unfinished_one(smol: LlamaCppBackend) -> None:
    """And a stream of the same messages after the reading gives the answer it gives without it."""
    options = GenerationOptions(temperature=0.0, top_k=1, repeat_penalty=1.0, seed=0, max_tokens=30)
    system = Message("system", "You are a helpful voice assistant. Give short, plain answers of one or two sentences.")

    def reading(text: str) -> float:
        smol.reset()
        return smol.ends_here([system, Message("user", text)])

    assert reading("Remind me to buy") < MEANT <= reading("who wrote Romeo and Juliet")
    assert reading("What is the capital of") < MEANT <= reading("How many legs does a spider have")
    messages = [system, Message("user", "who wrote Romeo and Juliet")]
    smol.reset()
    plain = "".join(smol.stream(messages, options, Reply()))
    reading("who wrote Romeo and Juliet")
    assert "".join(smol.stream(messages, options, Reply())) == plain


@pytest.mark.slow
def test_a_dropped_draft_does_not_change_the_next_answer(smol: LlamaCppBackend) -> None:
    """The model's context held the draft's prompt and tokens; the next answer is still the one it gives
    without any draft, and a draft carried on gives that same answer."""
    options = GenerationOptions(temperature=0.0, top_k=1, repeat_penalty=1.0, seed=0, max_tokens=40)
    conversation = Conversation(smol, "You are a helpful assistant.", options)
    question = "What is the capital of France?"
    smol.reset()
    plain = "".join(conversation.ask(question))
    conversation.reset()

    dropped = Draft(conversation, None, "What is the capital of Germany?", SentenceSplitter())
    assert dropped.take() is not None  # it wrote its first sentence
    dropped.drop()
    dropped.join()
    assert conversation.turns == []
    assert "".join(conversation.ask(question)) == plain
    conversation.reset()

    begun = Draft(conversation, None, question, SentenceSplitter()).take()
    assert begun is not None and begun.sentences
    assert "".join(begun.pieces) + "".join(begun.stream) == plain
    assert begun.conversation.turns[-1] == Message("assistant", plain) and conversation.turns == []
