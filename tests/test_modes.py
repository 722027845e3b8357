"""The modes on their own, with fakes at the seams: the events they yield and what they write."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.audio.chunk import RATE, AudioChunk
from edge_assistant.errors import UsageError
from edge_assistant.llm.options import GenerationOptions, Message, Reply
from edge_assistant.modes.assistant import Assistant
from edge_assistant.modes.events import Answered, AnswerText, Asked, Noted, Notice
from edge_assistant.modes.keys import EnterKeys
from edge_assistant.modes.transcribe import Transcriber
from edge_assistant.notes import NoteWriter
from edge_assistant.settings import AssistantSettings
from edge_assistant.stt.types import Utterance
from edge_assistant.tts.delivery import Mouth, NullSink

pytestmark = pytest.mark.usefixtures("no_network")


class Source:
    """Two seconds of audio, then the end."""

    name = "fake"
    live = True
    duration = None

    def check(self) -> None: ...

    def chunks(self) -> Generator[AudioChunk, None, None]:
        for i in range(40):
            yield AudioChunk(np.zeros(RATE // 20, dtype=np.int16), i / 20)

    def close(self) -> None: ...


class Recognizer:
    """Says each of `texts` as a final utterance, one per 10 chunks."""

    name, engine, streaming = "fake", "fake", True

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.opened = 0

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.opened = 0

    def stream(self, chunks: Iterable[AudioChunk]) -> Iterator[Utterance]:
        texts = iter(self.texts)
        for i, chunk in enumerate(chunks):
            if i % 10 == 9 and (text := next(texts, None)):
                yield Utterance(text[:4], chunk.start - 0.4, chunk.end, final=False)
                yield Utterance(text, chunk.start - 0.5, chunk.end)


class Backend:
    """Answers every question with `answer`, word by word."""

    name, context_length = "fake", 2048

    def __init__(self, answer: str = "Paris is the capital. It is big.") -> None:
        self.answer = answer
        self.asked: list[str] = []
        self.warmed: list[list[str]] = []
        """The messages of each prefix warmed."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m.content.split()) for m in messages)

    def warm(self, prefix: Sequence[Message]) -> float:
        self.warmed.append([m.content.strip() for m in prefix if m.role != "system"])
        return 0.0

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions, reply: Reply
    ) -> Generator[str, None, None]:
        self.asked.append(messages[-1].content)
        for word in self.answer.split(" "):
            reply.text += word + " "
            yield word + " "


def test_the_assistant_answers_each_question_of_a_file(tmp_path: Path) -> None:
    backend = Backend()
    log = tmp_path / "turns.jsonl"
    mode = Assistant(
        Recognizer(["What is the capital of France?", "And of Spain?"]),
        backend,
        Mouth(None, NullSink()),
        AssistantSettings(log=log),
        live=False,
    )
    with mode:
        events = list(mode.run(Source()))
    # the system prompt at the start, then each turn's end and the next one's header while nobody waits
    assert backend.warmed == [
        [],
        ["What is the capital of France?", backend.answer],
        ["What is the capital of France?", backend.answer, "And of Spain?", backend.answer],
    ]
    assert [e.text for e in events if isinstance(e, Asked)] == ["What is the capital of France?", "And of Spain?"]
    assert backend.asked == ["What is the capital of France?", "And of Spain?"]
    answers = [e.turn for e in events if isinstance(e, Answered)]
    assert [t.answer.strip() for t in answers] == [backend.answer] * 2
    assert "".join(e.text for e in events if isinstance(e, AnswerText)).count("Paris") == 2
    assert len(log.read_text().splitlines()) == 2


def test_turns_stop_the_assistant_and_a_silent_file_says_so() -> None:
    backend = Backend()
    mode = Assistant(
        Recognizer(["One?", "Two?"]), backend, Mouth(None, NullSink()), AssistantSettings(turns=1), live=False
    )
    with mode:
        events = list(mode.run(Source()))
    assert backend.asked == ["One?"]
    with Assistant(Recognizer([]), Backend(), Mouth(None, NullSink()), live=False) as mode:
        events = list(mode.run(Source()))
    assert [e for e in events if isinstance(e, Notice)] == [Notice("heard no question in the input")]


def test_with_a_wake_word_only_what_follows_it_is_answered() -> None:
    backend = Backend()
    mode = Assistant(Recognizer([]), backend, Mouth(None, NullSink()), live=False)
    mode.settings = AssistantSettings(wake_word="hey computer")
    with mode:
        events = list(mode.respond(Utterance("Hey computer, what time is it?", 0, 1)))
        assert [e.text for e in events if isinstance(e, Asked)] == ["what time is it?"]
        assert list(mode.respond(Utterance("what time is it?", 0, 1))) == []
        assert list(mode.respond(Utterance("hey computer", 0, 1))) == [Notice("(listening)")]


def test_a_wake_word_needs_a_streaming_engine_and_push_to_talk_a_terminal() -> None:
    with pytest.raises(UsageError, match="vosk"):
        Assistant(Recognizer([]), Backend(), Mouth(None, NullSink()), AssistantSettings(wake_word="hey"))
    with pytest.raises(UsageError, match="Enter"):
        Assistant(Recognizer([]), Backend(), Mouth(None, NullSink()), AssistantSettings(push_to_talk=True))


def test_push_to_talk_listens_once_per_enter(tmp_path: Path) -> None:
    presses = tmp_path / "keys"
    presses.write_text("\n\n")
    backend = Backend()
    keys = EnterKeys(presses.open())
    mode = Assistant(
        Recognizer(["First question?", "never heard"]),
        backend,
        Mouth(None, NullSink()),
        AssistantSettings(push_to_talk=True),
        keys=keys,
    )
    with mode:
        events = list(mode.run(Source()))
    # two presses, each opening the microphone anew: the first utterance of each listening is answered
    assert backend.asked == ["First question?", "First question?"]
    assert [e.text for e in events if isinstance(e, Notice)].count("listening ...") == 2


def test_the_transcriber_writes_each_utterance_as_it_ends(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    recognizer = Recognizer(["Hello there.", "General Kenobi."])
    mode = Transcriber(recognizer, NoteWriter(notes, "txt"))
    with mode:
        seen = []
        for event in mode.run(Source()):
            if isinstance(event, Noted):
                seen.append(notes.read_text().count("\n"))  # on disk when the event comes
        assert recognizer.opened
    assert seen == [2, 3]  # the session header line, then one line per utterance
    assert mode.stats.utterances == 2 and mode.stats.words == 4
    assert "General Kenobi." in notes.read_text()


def test_a_long_transcript_is_summarised_in_pieces_that_fit_the_context() -> None:
    from edge_assistant.modes.summary import summarize

    class Small(Backend):
        context_length = 600

        def __init__(self) -> None:
            super().__init__("- the team agreed on the plan")
            self.sizes: list[int] = []

        def stream(
            self, messages: Sequence[Message], options: GenerationOptions, reply: Reply
        ) -> Generator[str, None, None]:
            self.sizes.append(self.count_tokens(messages) + options.max_tokens)
            yield from super().stream(messages, options, reply)

    transcript = [f"Line {i} of the meeting is about topic number {i}." for i in range(400)]  # 4000 words
    backend = Small()
    summary = summarize(backend, transcript)
    assert summary.pieces >= 7 and summary.text == "- the team agreed on the plan"
    assert max(backend.sizes) <= backend.context_length, "every prompt and its answer fit the context"
    firsts = backend.asked[: summary.pieces]
    assert "\n".join(firsts).count("Line ") == 400, "no line of the transcript is left out"
    assert len(backend.asked) > summary.pieces, "then the summaries were summarised"
