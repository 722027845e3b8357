"""Where an interrupted notes file ends: its last session, the records in it, and a torn last record.

Each notes format is read back by the same patterns its records are written in, so `--resume` can continue
after the last complete record whatever the format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_TIME = r"(\d+):(\d\d):(\d\d)"
RECORDS = {
    "txt": re.compile(rf"(?m)^\[{_TIME}\.(\d{{3}}) - [^\]\n]*\] .*\n"),
    "md": re.compile(rf"(?m)^- `{_TIME}` .*\n(?:  .*\n)*"),
    "srt": re.compile(rf"(?m)^\d+\n{_TIME},(\d{{3}}) --> .*\n(?:.+\n)+\n"),
    "vtt": re.compile(rf"(?m)^{_TIME}\.(\d{{3}}) --> .*\n(?:.+\n)+\n"),
}
SESSIONS = {
    "txt": re.compile(r"(?m)^# session [\d-]+ [\d:]+(?: \((.*)\))?\n"),
    "md": re.compile(r"(?m)^## Session [\d-]+ [\d:]+(?: \((.*)\))?\n"),
    "vtt": re.compile(r"(?m)^NOTE session [\d-]+ [\d:]+(?: \((.*)\))?\n"),
}


@dataclass(frozen=True)
class Record:
    """One record as the file holds it."""

    key: int
    """Its start in milliseconds, to the precision the format shows (Markdown: whole seconds)."""
    body: str
    """The record's text without an SRT cue number, to compare a record with a new one."""
    text: str = ""
    """What was said."""


@dataclass(frozen=True)
class Tail:
    """The last session of a notes file."""

    keep: int
    """Bytes of the file up to the end of its last complete line or cue (a torn record after it goes)."""
    session: int
    """Character index where the last session's header starts (0 without headers)."""
    source: str | None
    """The input the session was made from, as its header names it."""
    records: tuple[Record, ...]


def parse_record(fmt: str, text: str) -> Record | None:
    """A record as written in `fmt`, or None when `text` is not one."""
    if fmt == "jsonl":
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("type") != "utterance":
            return None
        return Record(round(float(data.get("start", 0.0)) * 1000), text, str(data.get("text", "")))
    match = RECORDS[fmt].match(text)
    if match is None:
        return None
    h, m, s = (int(x) for x in match.groups()[:3])
    ms = int(match.group(4)) if fmt != "md" else 0
    body = text.split("\n", 1)[1] if fmt == "srt" else text
    if fmt in ("srt", "vtt"):
        said = body.split("\n")[1]
    else:
        said = text.split("` " if fmt == "md" else "] ", 1)[1].split("\n")[0].split("  =>  ")[0]
    return Record(((h * 60 + m) * 60 + s) * 1000 + ms, body, said)


def _complete(fmt: str, text: str) -> str:
    """The text up to the end of its last complete line (cue, for SRT/VTT)."""
    text = text.rstrip("\x00")
    mark = "\n\n" if fmt in ("srt", "vtt") else "\n"
    cut = text.rfind(mark)
    return text[: cut + len(mark)] if cut >= 0 else ""


def tail(fmt: str, raw: bytes) -> Tail:
    """The last session of a notes file's content."""
    text = _complete(fmt, raw.decode("utf-8", errors="replace"))
    keep = len(text.encode("utf-8", errors="replace"))
    if fmt == "jsonl":
        return _jsonl_tail(text, keep)
    session, source = 0, None
    if fmt in SESSIONS:
        headers = list(SESSIONS[fmt].finditer(text))
        if headers:
            session, source = headers[-1].start(), headers[-1].group(1)
    records: list[Record] = []
    for match in RECORDS[fmt].finditer(text, session):
        record = parse_record(fmt, match.group(0))
        if record is not None:
            records.append(record)
    return Tail(keep, session, source, tuple(records))


def _jsonl_tail(text: str, keep: int) -> Tail:
    session, source, records = 0, None, list[Record]()
    position = 0
    for line in text.splitlines(keepends=True):
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("type") == "session":
            session, source, records = position, str(data.get("source") or "") or None, []
        elif (record := parse_record("jsonl", line)) is not None:
            records.append(record)
        position += len(line)
    return Tail(keep, session, source, tuple(records))
