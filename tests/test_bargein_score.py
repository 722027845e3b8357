"""The barge-in bench's scoring and pacing, on turn logs: an answer stopped by a question played over it is a
person's interruption, however Whisper spelled or repeated the question; the next question waits until the
answer before it has been spoken."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest

from edge_assistant.bench.bargein import BargeInFigures, _asked_after, _score, _settle


def _turn(transcript: str, interrupted: bool, barge_in_s: float = 0.0) -> dict[str, object]:
    return {"transcript": transcript, "interrupted": interrupted, "timings": {"barge_in_s": barge_in_s}}


def test_a_question_heard_with_another_spelling_and_repeated_is_a_person() -> None:
    """From a bench run: the answer to the fourth question was still being spoken when the fifth was played."""
    turns = [
        _turn("What is the capital of France?", False),
        _turn("who wrote promido and juliette.", True, 0.29),
        _turn("What color is the sky on a clear day? What color is the sky on a clear", False),
    ]
    figures = BargeInFigures()
    _score(turns, figures)
    assert (figures.false_interruptions, figures.interruptions, figures.answers) == (0, 1, 1)
    assert figures.echo_turns == 0


def test_the_end_of_a_question_heard_after_a_pause_is_a_person() -> None:
    """As in a bench run: the story asked for was taken as two turns at a pause, and the second stopped the first."""
    turns = [
        _turn("Describe in detail a long walk through a forest.", True, 0.31),
        _turn("in autumn.", True, 0.3),
        _turn("How many legs does the spider have?", False),
    ]
    figures = BargeInFigures()
    _score(turns, figures)
    assert (figures.false_interruptions, figures.interruptions, figures.echo_turns) == (0, 2, 0)


def test_an_answer_stopped_by_something_nobody_asked_is_a_false_interruption() -> None:
    turns = [
        _turn("How many days are there in a week?", True, 0.3),
        _turn("seven days in a week and", False),
        _turn("What is the capital of France?", True, 0.3),
        _turn("Paris is a city of art.", False),  # its own answer heard back
    ]
    figures = BargeInFigures()
    _score(turns, figures)
    assert (figures.false_interruptions, figures.answers, figures.echo_turns) == (2, 3, 2)


def test_the_next_question_waits_for_the_answer_not_only_for_a_quiet_log(tmp_path: Path) -> None:
    log = tmp_path / "turns.jsonl"
    log.write_text(json.dumps(_turn("Tell me a long story about a ship lost at sea.", True)) + "\n")
    # the log is quiet, but the question played after the first turn has not been answered (its answer is spoken)
    with pytest.raises(RuntimeError, match="did not settle"):
        _settle(log, 0.6, partial(_asked_after, 1, None), quiet=0.1)
    with pytest.raises(RuntimeError, match="did not settle"):
        _settle(log, 0.6, partial(_asked_after, 0, "Who wrote Romeo and Juliet?"), quiet=0.1)
    with log.open("a") as f:
        f.write(json.dumps(_turn("The rope-romed-o and Juliet.", False)) + "\n")
    _settle(log, 5.0, partial(_asked_after, 1, None), quiet=0.1)
    _settle(log, 5.0, partial(_asked_after, 0, "Who wrote Romeo and Juliet?"), quiet=0.1)
