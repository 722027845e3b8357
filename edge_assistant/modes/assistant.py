"""The voice assistant: listen, answer with the language model, speak the answer sentence by sentence.

Turn-taking lives here: push-to-talk (Enter, then one utterance), hands-free (every utterance, or what
follows a wake word), or the questions in a file. Capture is gated while the assistant speaks (and a
transcript that repeats what it just said is dropped), so it does not answer itself. Barge-in
(`interrupt()`: Enter, or the wake word spoken over the answer) stops generation and speech at once.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import replace

from ..audio.chunk import AudioChunk
from ..audio.sources import AudioSource, MicSource
from ..errors import UsageError
from ..llm.backend import Backend
from ..llm.conversation import Conversation
from ..llm.options import GenerationOptions, Reply
from ..settings import AssistantSettings
from ..stt.recognizer import Recognizer
from ..stt.types import Utterance
from ..stt.vosk import VoskRecognizer
from ..text import SentenceSplitter
from ..tts.delivery import Mouth
from .bargein import VoiceOver
from .base import Mode
from .draft import Begun, Draft
from .events import Answered, AnswerText, Asked, Event, Heard, Notice, Partial
from .keys import EnterKeys
from .turns import EchoGuard, Turn, TurnLog
from .turntaking import TurnEnd
from .wake import WakeSpotter

log = logging.getLogger(__name__)
RESET = re.compile(
    r"\b(reset (the )?conversation|forget (everything|our conversation)|start over|new conversation)\b", re.I
)
OPTIONS = GenerationOptions(temperature=0.2, top_k=40, repeat_penalty=1.1, seed=None, max_tokens=160)
EAGER_WORDS = 6
"""A first sentence may be spoken from its first comma once it has this many words (sooner first audio)."""

Events = Generator[Event, None, Turn | None]


class Assistant(Mode):
    """Wires a recognizer, a language model and a voice; `run` takes turns until the input ends."""

    def __init__(
        self,
        recognizer: Recognizer,
        backend: Backend,
        mouth: Mouth,
        settings: AssistantSettings | None = None,
        *,
        live: bool = True,
        keys: EnterKeys | None = None,
        options: GenerationOptions = OPTIONS,
    ) -> None:
        self.settings = settings or AssistantSettings()
        if self.settings.wake_word and not isinstance(recognizer, VoskRecognizer):
            raise UsageError(
                "--wake-word needs the vosk engine: install a vosk model for your language "
                "(edge-assistant models list --kind stt) and pass --engine vosk"
            )
        if self.settings.push_to_talk and keys is None:
            raise UsageError("push-to-talk needs a terminal to press Enter in")
        self.recognizer = recognizer
        self.backend = backend
        self.mouth = mouth
        self.live = live
        """The input is a live microphone, which can hear the assistant's voice: gate it while speaking."""
        self.keys = keys
        self.log = TurnLog(self.settings.log)
        self._notices: list[str] = []
        self._delivered: list[tuple[float, float]] = []
        self.echo = EchoGuard()
        self.conversation = Conversation(backend, self.settings.system, options, notify=self._notices.append)
        self.turn_end = TurnEnd(self.settings.turn, on_likely_end=self._draft, on_resumed=self._drop_draft)
        self.draft: Draft | None = None
        """The answer begun while the turn may be ending (`modes/draft.py`)."""
        self._dropped: list[Draft] = []
        self.voice_over = VoiceOver(mouth, self._barge_in) if self.settings.echo_cancel else None
        """Hears a person speaking over the answer (with echo cancellation only)."""
        self._barge: tuple[float, float] | None = None
        """(onset of the speech over the answer, when the voice went silent), perf_counter times."""
        self.spotter: WakeSpotter | None = None
        """Listens for the wake word while the assistant speaks (barge-in by voice)."""
        self.barge = threading.Event()

    @property
    def wake_word(self) -> str | None:
        return self.settings.wake_word

    # -- lifecycle ---------------------------------------------------------------------------------
    def open(self) -> None:
        """Load what is slow before listening: recognizer, voice, model and the system prompt's KV state."""
        self.recognizer.turn_end = self.turn_end
        self.recognizer.open()
        self.mouth.open()
        self.backend.open()
        self.backend.warm(self.conversation.prefix)
        if self.wake_word and isinstance(self.recognizer, VoskRecognizer):
            self.spotter = WakeSpotter(self.recognizer.model, self.wake_word)
        if self.keys is not None:
            self.keys.on_press = self.interrupt
            self.keys.start()
        if self.voice_over is not None:
            self.voice_over.open()

    def close(self) -> None:
        self._drop_draft()
        self._settle_drafts()
        if self.voice_over is not None:
            self.voice_over.close()
        self.mouth.close()
        self.recognizer.close()
        self.backend.close()

    # -- turn-taking -------------------------------------------------------------------------------
    def run(self, source: AudioSource) -> Iterator[Event]:
        """Answer until the input ends, `turns` answers are given, or the user stops it."""
        if self.voice_over is not None and isinstance(source, MicSource):
            source.taps.append(self.voice_over.feed)
        if self.settings.push_to_talk:
            yield from self._push_to_talk(source)
            return
        if self.live:
            wake = f" for {self.wake_word!r}" if self.wake_word else ""
            yield Notice(f"listening{wake}; Enter stops an answer, Ctrl-C quits")
        answered = 0
        for event in self.hear(source.chunks()):
            yield event
            if isinstance(event, Heard) and (yield from self.respond(event.utterance)):
                answered += 1
                if self._enough(answered):
                    return
        if not answered and not self.live:
            yield Notice("heard no question in the input")

    def _push_to_talk(self, source: AudioSource) -> Iterator[Event]:
        """Enter, one utterance, its answer; again."""
        assert self.keys is not None
        answered = 0
        while not self._enough(answered):
            yield Notice("press Enter and speak (Ctrl-C quits)")
            self.keys.on_press = None
            if not self.keys.wait():
                return
            self.keys.on_press = self.interrupt
            yield Notice("listening ...")
            heard: Utterance | None = None
            chunks = source.chunks()
            events = self.hear(chunks)
            try:
                for event in events:
                    yield event
                    if isinstance(event, Heard):
                        heard = event.utterance
                        break
            finally:
                events.close()
                chunks.close()  # the microphone closes while the answer is spoken
            if heard is not None and (yield from self.respond(heard)):
                answered += 1

    def _enough(self, answered: int) -> bool:
        return self.settings.turns is not None and answered >= self.settings.turns

    # -- listening ---------------------------------------------------------------------------------
    def hear(self, chunks: Iterable[AudioChunk]) -> Generator[Event, None, None]:
        """Partial and final utterances from the (gated) audio, with notices raised on the way."""
        for u in self.recognizer.stream(self._gate(self._stamp(chunks))):
            yield from self._pending()
            yield Heard(u) if u.final else Partial(u)

    def _stamp(self, chunks: Iterable[AudioChunk]) -> Iterator[AudioChunk]:
        """Note when each chunk arrived (for the timings of the turn it ends)."""
        for chunk in chunks:
            self._delivered.append((chunk.end, chunk.captured or time.perf_counter()))
            del self._delivered[:-200]
            yield chunk

    def _gate(self, chunks: Iterable[AudioChunk]) -> Iterable[AudioChunk]:
        """Without echo cancellation a live microphone hears the assistant: silence it while it speaks."""
        if not self.live or self.settings.echo_cancel:
            return chunks
        return self.mouth.gate(chunks, self._spot_wake_word)

    def _barge_in(self, onset: float) -> None:
        """Somebody spoke over the answer (the barge-in thread): stop it now."""
        self._notices.append("you spoke: stopping the answer")
        self.interrupt()
        self._barge = (onset, time.perf_counter() + self.mouth.sink.latency)

    def _spot_wake_word(self, chunk: AudioChunk) -> None:
        if self.spotter is not None and self.mouth.speaking.is_set() and self.spotter.feed(chunk):
            self._notices.append("wake word: stopping the answer")
            self.interrupt()

    def _pending(self) -> Iterator[Notice]:
        while self._notices:
            yield Notice(self._notices.pop(0))

    def heard_at(self, stream_time: float) -> float | None:
        """perf_counter time at which the audio at `stream_time` reached us (None if unknown)."""
        for end, wall in self._delivered:
            if end >= stream_time:
                return wall - (end - stream_time)
        return None

    def after_wake_word(self, text: str) -> str | None:
        """With a wake word: the request that follows it, '' for the wake word alone, None without it."""
        if not self.wake_word:
            return text
        words = re.escape(self.wake_word.lower()).replace(r"\ ", r"[\s,]+")
        match = re.search(rf"\b{words}\b[\s,.!?]*", text.lower())
        return text[match.end() :].strip() if match else None

    # -- drafts ------------------------------------------------------------------------------------
    def _draft(self, heard: str) -> None:
        """The turn may end with these words (the recognizer, at a pause): begin the answer while it waits."""
        self._drop_draft()
        question = heard.strip()
        if (
            self.settings.wake_word
            or self.mouth.speaking.is_set()
            or self.echo.is_echo(question)
            or RESET.search(question)
        ):
            return
        self._settle_drafts()
        splitter = SentenceSplitter(eager_words=EAGER_WORDS)
        self.draft = Draft(
            self.conversation, self.mouth, question, splitter, self.turn_end.meant, self.turn_end.waiting_on
        )

    def _drop_draft(self) -> None:
        """The voice came back: the turn goes on, and the draft is of no use."""
        if self.draft is not None:
            self.draft.drop()
            self._dropped.append(self.draft)
            self.draft = None

    def _settle_drafts(self) -> None:
        """Wait for dropped drafts to stop (before the model is used again)."""
        while self._dropped:
            self._dropped.pop().join()

    def _begun(self, question: str) -> Begun | None:
        """The draft's answer to `question`, if one was begun for it; any other draft is dropped."""
        if self.draft is not None and self.draft.question != question:
            self._drop_draft()
        draft, self.draft = self.draft, None
        self._settle_drafts()
        return draft.take() if draft is not None else None

    # -- answering ---------------------------------------------------------------------------------
    def respond(self, utterance: Utterance) -> Events:
        """Answer a final utterance (the part after the wake word, with one); the turn, or None when nothing
        was answered."""
        text = self.after_wake_word(utterance.text)
        if text is None:
            return None
        if not text:
            yield Notice("(listening)")
            return None
        yield Asked(text)
        turn = yield from self.answer(replace(utterance, text=text))
        return None if turn.dropped else turn

    def answer(self, utterance: Utterance) -> Generator[Event, None, Turn]:
        """Answer one final utterance: stream the text, speak each sentence as soon as it is complete."""
        heard = time.perf_counter()
        spoke_at = self.heard_at(utterance.end)
        text = utterance.text.strip()
        turn = Turn(text)
        if self.echo.is_echo(text):
            turn.dropped = "echo of the assistant's own speech"
            self.log.write(turn)
            yield Answered(turn)
            return turn
        if RESET.search(text):
            self.conversation.reset()
            turn.answer = "Okay, I have forgotten our conversation."
            yield AnswerText(turn.answer)
            self._speak_all(turn.answer)
            self.log.write(turn)
            yield Answered(turn)
            return turn
        self.barge.clear()
        self._barge = None
        self.mouth.start_turn()
        begun = self._begun(text)
        turn.drafted = begun is not None
        started = time.perf_counter()
        first_sentence: float | None = None
        if begun is None:
            conversation, reply, splitter = self.conversation, Reply(), SentenceSplitter(eager_words=EAGER_WORDS)
            stream = conversation.ask(text, reply)
        else:
            conversation, reply, splitter, stream = begun.conversation, begun.reply, begun.splitter, begun.stream
            self._notices += begun.notices
            for piece in begun.pieces:
                yield AnswerText(piece)
            for i, sentence in enumerate(begun.sentences):
                first_sentence = first_sentence or started
                self.mouth.say(sentence, begun.speech if i == 0 else None)
            self.mouth.wait_synthesized()
        try:
            for piece in stream:
                yield from self._pending()
                yield AnswerText(piece)
                for sentence in splitter.feed(piece):
                    first_sentence = first_sentence or time.perf_counter()
                    self.mouth.say(sentence)
                    self.mouth.wait_synthesized()  # the model and the voice take turns on the CPU
                if self.barge.is_set():
                    turn.interrupted = True
                    break
            else:
                for sentence in splitter.flush():
                    first_sentence = first_sentence or time.perf_counter()
                    self.mouth.say(sentence)
                self.mouth.finish()
        except (KeyboardInterrupt, GeneratorExit):
            turn.interrupted = True
            raise
        finally:
            stream.close()
            self.conversation.turns = conversation.turns
            if turn.interrupted or self.barge.is_set():
                turn.interrupted = True
                self.mouth.interrupt()
                self.mouth.finish(timeout=2)
            turn.answer = reply.text
            self._record(turn, reply, utterance, spoke_at, heard, started, first_sentence)
        self._prepare_next()
        yield from self._pending()
        yield Answered(turn)
        return turn

    def _prepare_next(self) -> None:
        """Evaluate the end of this turn and the header of the next now, while nobody waits, rather than after the
        next question (a few tokens: ~25 ms sooner to its first token with SmolLM2 135M on two cores)."""
        self.backend.warm([*self.conversation.prefix, *self.conversation.turns])

    def _record(
        self,
        turn: Turn,
        reply: Reply,
        utterance: Utterance,
        spoke_at: float | None,
        heard: float,
        started: float,
        first_sentence: float | None,
    ) -> None:
        self.echo.said(" ".join(self.mouth.spoken) or turn.answer)
        t = turn.timings
        if spoke_at is not None:
            t.turn_end_s = max(0.0, heard - spoke_at)
        t.ttft_s = reply.timings.ttft
        t.first_sentence_s = (first_sentence - started) if first_sentence else 0.0
        t.tts_s = self.mouth.synth_seconds or 0.0
        if spoke_at is not None and self.mouth.first_audio is not None:
            t.first_audio_s = self.mouth.first_audio - spoke_at
        if spoke_at is not None and self.mouth.first_heard is not None:
            t.first_heard_s = self.mouth.first_heard - spoke_at
        if self._barge is not None:
            t.barge_in_s = self._barge[1] - self._barge[0]
        t.total_s = time.perf_counter() - heard
        self.log.write(turn)

    def _speak_all(self, text: str) -> None:
        self.mouth.start_turn()
        self.mouth.say(text)
        self.mouth.finish()

    def interrupt(self) -> None:
        """Barge-in: stop generation and speech now."""
        self.barge.set()
        self.mouth.interrupt()
