"""Resuming a notes file: a torn last record is cut, the records already there are skipped, the numbering and
session go on; in every format (no model: utterances made here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_assistant.notes import FORMATS, NoteWriter
from edge_assistant.stt.types import Utterance, Word

SAID = [
    Utterance("Good morning.", 1.2, 2.0, words=(Word("Good", 1.2, 1.5, 0.9), Word("morning.", 1.5, 2.0, 0.8))),
    Utterance("First item.", 3.1, 3.9),
    Utterance("Second item.", 3.95, 4.6),  # the same second as the one before (Markdown shows seconds)
    Utterance("Any questions?", 70.25, 71.5),
    Utterance("Thanks, bye.", 3601.0, 3602.5),
]


def _write(path: Path, fmt: str, utterances: list[Utterance], resume: bool = False) -> list[bool]:
    with NoteWriter(path, fmt, source="/rec/meeting.m4a", resume=resume) as writer:
        return [writer.write(u) for u in utterances]


def _same(a: str, b: str) -> bool:
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    return re.sub(stamp, "", a) == re.sub(stamp, "", b)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("torn", ["", "[00:01:1", "\x00\x00\x00\x00"])
@pytest.mark.parametrize("kept", [1, 3, 4])
def test_a_resumed_run_writes_what_is_missing_and_nothing_twice(fmt: str, torn: str, kept: int, tmp_path: Path) -> None:
    whole = tmp_path / f"whole.{fmt}"
    _write(whole, fmt, SAID)
    cut = tmp_path / f"cut.{fmt}"
    _write(cut, fmt, SAID[:kept])
    with cut.open("a") as f:
        f.write(torn)
    # the resumed run hears everything again from somewhere before the cut (its window's start)
    written = _write(cut, fmt, SAID[kept - 1 :], resume=True)
    assert written == [False] + [True] * (len(SAID) - kept)
    assert _same(cut.read_text(), whole.read_text())


@pytest.mark.parametrize("fmt", FORMATS)
def test_resume_starts_at_the_last_record_of_the_last_session(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"notes.{fmt}"
    _write(path, fmt, SAID[:2])
    if fmt != "srt":  # SRT has no session marks: the file is one recording's
        _write(path, fmt, SAID[:4])  # a second session of the same recording
    writer = NoteWriter(path, fmt, source="meeting.m4a", resume=True)
    writer.open()
    writer.close()
    expected = {"md": 70.0}.get(fmt, 70.25) if fmt != "srt" else 3.1
    assert writer.resumed_at == pytest.approx(expected, abs=1e-3)
    assert writer.resumed_texts[-1] == ("Any questions?" if fmt != "srt" else "First item.")


def test_a_new_file_with_resume_is_an_ordinary_first_session(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    assert _write(path, "md", SAID[:1], resume=True) == [True]
    assert path.read_text().startswith("## Session ")
