"""An answer begun before the turn is known to be over.

When the words at a pause read as a finished request but the recognizer left them open (Whisper wrote no
question mark: "who wrote Romeo and Juliet"), the turn ends only after the full trailing silence, since the
speaker may be stopping to think. That wait is spent on the answer: on a worker thread the language model writes
its first sentence and the voice makes the first piece of it, so that the answer is heard as soon as the silence
ends the turn. When the voice comes back instead, the draft is dropped: it stops at its next token, its turn
never joins the conversation (it runs on a copy), and the model's context keeps what the next prompt shares.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field

from ..llm.backend import Backend, Reader
from ..llm.conversation import Conversation
from ..llm.options import Message, Reply
from ..text import SentenceSplitter
from ..tts.delivery import Mouth
from ..tts.speaker import Speech

log = logging.getLogger(__name__)
MEANT = 0.01
"""Probability of the question ending where it does above which the model reads it as finished (`ends_here`);
SmolLM2 135M gave at most 0.001 to 20 unfinished requests and at least 0.037 to 29 finished ones."""


def reads_finished(backend: Backend, messages: Sequence[Message]) -> bool:
    """Whether the model reads the last message as a finished request (False for a backend that cannot say)."""
    return isinstance(backend, Reader) and backend.ends_here(messages) >= MEANT


@dataclass
class Begun:
    """What a draft made of the answer; the assistant carries on from here."""

    conversation: Conversation
    """The copy of the conversation the answer streams in: its turns become the conversation's once it is over."""
    stream: Generator[str, None, None]
    """The answer's text stream, paused after the first sentence."""
    reply: Reply
    splitter: SentenceSplitter
    pieces: list[str] = field(default_factory=list)
    """The text streamed so far."""
    sentences: list[str] = field(default_factory=list)
    """Whole sentences of it, not spoken yet."""
    speech: Iterator[Speech] | None = None
    """The first sentence's audio: its first piece made, the rest to come."""
    notices: list[str] = field(default_factory=list)


class Draft:
    """Starts answering `question` on a worker thread; `take()` it once the turn is over, or `drop()` it."""

    def __init__(
        self,
        conversation: Conversation,
        mouth: Mouth | None,
        question: str,
        splitter: SentenceSplitter,
        on_meant: Callable[[], None] | None = None,
        said: str | None = None,
    ) -> None:
        self.question = question
        self._mouth = mouth
        self._on_meant = on_meant
        """Told when the model reads the words said as a finished request (`MEANT` or more that they end there)."""
        self._said = said or question
        """The question without words the recognizer wrote into the silence after the voice (what is judged)."""
        notices: list[str] = []
        copy = Conversation(
            conversation.backend,
            conversation.system,
            conversation.options,
            notify=notices.append,
            turns=list(conversation.turns),
            reserve=conversation.reserve,
        )
        reply = Reply()
        self._begun = Begun(copy, copy.ask(question, reply), reply, splitter, notices=notices)
        self._stop = threading.Event()
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="draft", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        begun = self._begun
        try:
            if self._on_meant is not None:
                meant = reads_finished(begun.conversation.backend, begun.conversation.fit(self._said))
                if meant and not self._stop.is_set():
                    self._on_meant()
            for piece in begun.stream:
                begun.pieces.append(piece)
                begun.sentences += begun.splitter.feed(piece)
                if begun.sentences or self._stop.is_set():
                    break
            else:
                begun.sentences += begun.splitter.flush()
            if begun.sentences and self._mouth is not None and not self._stop.is_set():
                begun.speech = self._mouth.begin(begun.sentences[0])
        except Exception as exc:  # the answer proper meets it again, and reports it
            log.debug("draft of %r failed: %s", self.question, exc)
            self._failed = True

    def take(self) -> Begun | None:
        """Wait for the draft's first sentence; None when it failed (answer from the start instead)."""
        self._thread.join()
        if self._failed or self._stop.is_set():
            self.join()
            return None
        return self._begun

    def drop(self) -> None:
        """Stop it at its next token, without waiting (`join()` does, before the model is used again)."""
        self._stop.set()

    def join(self) -> None:
        """Wait until a dropped draft has stopped, and end its answer's stream."""
        self._thread.join()
        self._begun.stream.close()
