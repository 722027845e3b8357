"""Whisper (faster-whisper, CTranslate2 int8 on the CPU): live audio in utterances cut by the endpointer; a
recording in long windows, segmented by faster-whisper itself (its VAD and 30 s passes)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio.chunk import RATE, AudioChunk
from ..audio.endpoint import Boundary, Endpointer
from ..audio.windows import Window
from ..errors import ModelFileError, NotInstalledError
from ..settings import EndpointSettings
from .missed import CLOSING, join_tail, unheard_tail
from .recognizer import TurnEnd
from .segments import utterances
from .short_window import Superseded, WindowText, transcribe_short
from .types import Utterance, Word
from .unsaid import said_so_far

log = logging.getLogger(__name__)
PRE_ROLL = 0.3
"""Seconds of audio kept before the detected start (soft onsets)."""
POST_ROLL = 0.2
REQUIRED = ("model.bin", "tokenizer.json")
VOCABULARY = ("vocabulary.txt", "vocabulary.json")
WINDOW_SEED = 0
BEST_OF = 2
"""Candidates drawn at each temperature of faster-whisper's fallback (its default: 5), when a beam search's text
repeats itself or is unsure. CTranslate2 copies the encoder's output for each candidate: a fallback of tiny.en
took 95 MiB for a moment with five, 37 with two and 24 with one, and five made the peak of a recording's run."""


@dataclass
class PauseJob:
    """The utterance up to a pause, transcribed on the worker while the endpointer listens on."""

    time: float
    """Where the pause began (the end of the voice)."""
    result: Future[Utterance | None]
    stop: threading.Event
    """Set by `drop`; the job checks it between its steps."""

    def drop(self) -> None:
        """Its text is not wanted (a later pause or the end took over): it does not start, or it stops after the
        step under way, so that the CPU goes to the text that is."""
        self.result.cancel()
        self.stop.set()


class WhisperRecognizer:
    """A faster-whisper model folder (model.bin, config.json, tokenizer.json, vocabulary)."""

    engine = "whisper"
    streaming = False

    def __init__(
        self,
        model_path: Path,
        *,
        name: str | None = None,
        language: str | None = None,
        threads: int = 0,
        beam_size: int = 5,
        word_timestamps: bool = True,
        short_window: bool = False,
        endpoint: EndpointSettings | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.name = name or self.model_path.name
        self.language = language
        self.threads = threads
        self.beam_size = beam_size
        self.word_timestamps = word_timestamps
        """Per-word times (notes); without them and with beam 1 an utterance is ready ~0.1 s sooner (voice)."""
        self.short_window = short_window
        """Greedy decoding in a window cut to the utterance (`stt/window.py`): the quickest text, for conversation."""
        self.endpoint = endpoint or EndpointSettings()
        self.turn_end: TurnEnd | None = None
        self._waited: float | None = None
        """The end of the voice after which `turn_end` was told the turn waits on the words heard."""
        self._model: Any = None

    @property
    def english_only(self) -> bool:
        return self.name.endswith(".en") or self.model_path.name.endswith(".en")

    def check(self) -> None:
        """The folder holds every file faster-whisper reads: without one it would fetch it from the network."""
        if not (self.model_path / "model.bin").exists():
            raise NotInstalledError(f"{self.model_path} is not a faster-whisper model folder (no model.bin)")
        missing = [name for name in REQUIRED if not (self.model_path / name).is_file()]
        if not any((self.model_path / name).is_file() for name in VOCABULARY):
            missing.append(" or ".join(VOCABULARY))
        if missing:
            raise ModelFileError(
                f"{self.model_path} is an incomplete faster-whisper model (missing {', '.join(missing)}); "
                "pull it again or copy the whole folder"
            )

    def open(self) -> None:
        if self._model is not None:
            return
        self.check()
        try:
            from faster_whisper import WhisperModel

            from .features import BlockFeatureExtractor
            from .vad import use_block_vad
        except ImportError:
            raise NotInstalledError("Whisper needs faster-whisper: pip install 'edge-assistant[whisper]'") from None
        try:
            self._model = WhisperModel(
                str(self.model_path), device="cpu", compute_type="int8", cpu_threads=self.threads, local_files_only=True
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelFileError(f"faster-whisper cannot load {self.model_path}: {exc}") from None
        self._model.feature_extractor = BlockFeatureExtractor.like(self._model.feature_extractor)
        use_block_vad()

    def close(self) -> None:
        self._model = None

    def transcribe(
        self, samples: npt.NDArray[np.int16], offset: float = 0.0, stop: threading.Event | None = None
    ) -> Utterance | None:
        """One utterance of 16 kHz audio to text, word times shifted by `offset` seconds. A set `stop` gives up
        (None) after the step under way, in the short window Whisper takes for conversation."""
        if self._model is None:
            raise RuntimeError("recognizer is not open")
        language = "en" if self.english_only else self.language
        if self.short_window:
            try:
                return self._transcribe_short(samples, offset, language, stop)
            except Superseded:
                return None
        audio = samples.astype(np.float32) / 32768.0
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=self.beam_size,
            best_of=BEST_OF,
            word_timestamps=self.word_timestamps,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        words: list[Word] = []
        texts: list[str] = []
        spans: list[tuple[float, float]] = []
        for segment in segments:
            texts.append(segment.text.strip())
            spans.append((float(segment.start), float(segment.end)))
            for w in segment.words or []:
                words.append(Word(w.word.strip(), offset + float(w.start), offset + float(w.end), float(w.probability)))
        text = " ".join(t for t in texts if t).strip()
        if not text:
            return None
        length = len(samples) / RATE
        start = words[0].start if words else offset + (spans[0][0] if spans else 0.0)
        end = words[-1].end if words else offset + min(length, spans[-1][1] if spans else length)
        return Utterance(text, start, end, final=True, words=tuple(words), language=info.language or language)

    def _transcribe_short(
        self, samples: npt.NDArray[np.int16], offset: float, language: str | None, stop: threading.Event | None
    ) -> Utterance | None:
        # the words in time for turn-taking, which must tell the words said from those Whisper only expected
        found = transcribe_short(self._model, samples, language, words=self.turn_end is not None, stop=stop)
        if not found.speech:
            return None
        text, words = self._with_unheard_tail(found, samples, offset, stop)
        end = offset + len(samples) / RATE
        return Utterance(text, offset, end, final=True, words=words, language=found.language)

    def _with_unheard_tail(
        self, found: WindowText, samples: npt.NDArray[np.int16], offset: float, stop: threading.Event | None
    ) -> tuple[str, tuple[Word, ...]]:
        """The text and words of `found`, with the speech after a pause that has no word in it (`stt/missed.py`)
        heard on its own and joined on."""
        words = [Word(w.text, offset + w.start, offset + w.end, w.probability) for w in found.words]
        tail = unheard_tail(samples, [w.start for w in found.words])
        if tail is None:
            return found.text, tuple(words)
        rest = transcribe_short(self._model, samples[int(tail * RATE) :], found.language, words=True, stop=stop)
        joined, repeated = join_tail(found.text, rest.text) if rest.speech else (found.text, 0)
        if joined == found.text:
            return found.text, tuple(words)
        log.debug("speech after a pause was left out of %r: %r", found.text, rest.text)
        words[-1] = replace(words[-1], text=words[-1].text.rstrip(CLOSING) or words[-1].text)
        at = offset + tail
        words += [Word(w.text, at + w.start, at + w.end, w.probability) for w in rest.words[repeated:]]
        return joined, tuple(words)

    def transcribe_window(self, window: Window) -> Iterator[Utterance]:
        """The segments of a window of a recording, each as soon as faster-whisper has it. Its VAD skips the
        silences; the random generator of the temperature fallback is seeded per window, so the same window
        always gives the same text (what makes a resumed run equal an uninterrupted one)."""
        if self._model is None:
            raise RuntimeError("recognizer is not open")
        import ctranslate2

        ctranslate2.set_random_seed(WINDOW_SEED)
        segments, info = self._model.transcribe(
            window.samples.astype(np.float32) / 32768.0,
            language="en" if self.english_only else self.language,
            beam_size=self.beam_size,
            best_of=BEST_OF,
            word_timestamps=self.word_timestamps,
            vad_filter=True,
        )
        yield from utterances(
            segments, window.samples, window.start, self.endpoint.trailing_silence, info.language or None
        )

    def stream(self, chunks: Iterable[AudioChunk]) -> Iterator[Utterance]:
        """Utterances cut by the endpointer. At a short pause the utterance so far is already transcribed on a
        worker thread; when the pause turns out to be the end, that result is used (no wait after the end).
        With `turn_end`, that early text may end the utterance before the trailing silence; when it does not,
        `turn_end` hears of the words it waits on, and of the voice coming back after them."""
        endpoint = self.endpoint if self.turn_end is None else replace(self.endpoint, pause=self.turn_end.pause)
        endpointer = Endpointer(endpoint)
        kept: list[AudioChunk] = []
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        early: PauseJob | None = None
        shown: Future[Utterance | None] | None = None
        self._waited = None
        try:
            for chunk in chunks:
                kept.append(chunk)
                boundaries = endpointer.feed(chunk)
                if self.turn_end is not None and self._waited not in (None, endpointer.last_voice):
                    self._waited = None
                    self.turn_end.resumed()
                if early is not None and early.result is not shown and early.result.done() and endpointer.in_speech:
                    shown = early.result  # the words so far, while the speaker may go on
                    if (words := early.result.result()) is not None:
                        yield replace(words, final=False)
                if early is not None and self._turn_over(endpointer, early):
                    boundaries.append(endpointer.end_now())
                for b in boundaries:
                    if b.kind == "start":
                        kept = [c for c in kept if c.end > b.time - PRE_ROLL]
                    elif b.kind == "pause":
                        if early is not None:
                            early.drop()  # the newer pause supersedes it
                        stop = threading.Event()
                        job = pool.submit(self._segment, list(kept), b.time + POST_ROLL, stop)
                        early = PauseJob(b.time, job, stop)
                    else:
                        done = self._final(early, kept, b)
                        kept = [c for c in kept if c.end > b.time] if b.kind == "cut" else []
                        early = self._waited = None
                        if done:
                            yield done
                if not endpointer.in_speech:
                    kept = [c for c in kept if c.end > chunk.end - PRE_ROLL]
            for b in endpointer.finish():
                # the audio ended in the short pause: the text started there is the text of the end
                done = self._final(early, kept, b)
                if done:
                    yield done
        finally:
            if early is not None:
                early.drop()
            pool.shutdown(wait=False, cancel_futures=True)

    def _final(self, early: PauseJob | None, kept: list[AudioChunk], b: Boundary) -> Utterance | None:
        """The text of the utterance that ends (or is cut) at `b`: the pause job's when the voice ended where its
        pause began, else transcribed now (and the job, overtaken, dropped)."""
        if b.kind == "end" and early is not None and early.time == b.time:
            return early.result.result()
        if early is not None:
            early.drop()
        return self._segment(kept, b.time + (POST_ROLL if b.kind == "end" else 0.0))

    def _turn_over(self, endpointer: Endpointer, early: PauseJob) -> bool:
        """The text transcribed at the last pause says the turn is over, after the silence heard since."""
        if self.turn_end is None or early.time != endpointer.last_voice:
            return False
        silence = endpointer.silence
        if silence < self.turn_end.min_silence:
            return False
        heard = early.result.result()  # wait for it: it is due about now, and the decision needs it
        if heard is None:
            return False
        said = said_so_far(heard, early.time - endpointer.lag)
        if self.turn_end(said, silence, punctuated=True):
            return True
        if self._waited != early.time:
            self._waited = early.time
            self.turn_end.waiting(heard.text, said)
        return False

    def _segment(self, kept: list[AudioChunk], until: float, stop: threading.Event | None = None) -> Utterance | None:
        if not kept:
            return None
        samples = np.concatenate([c.samples for c in kept])
        start = kept[0].start
        samples = samples[: max(0, int((until - start) * RATE))]
        if len(samples) < RATE * 0.2:
            return None
        done = self.transcribe(samples, offset=start, stop=stop)
        if done is not None and (self.short_window or not done.words):
            # no word times to end it (or only for turn-taking): the end of speech is where the endpointer heard
            # the last voice, not the end of the audio or whisper's coarse segment end (which run into the silence
            # kept after it)
            done = replace(done, end=min(done.end, max(done.start, until - POST_ROLL)))
        return done
