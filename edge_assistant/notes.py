"""Notes files: one utterance a record, each written in one call, flushed and fsynced at once.

A crash, Ctrl-C or power cut loses at most the utterance being spoken. An existing file is never
overwritten unless asked: a new session is appended under a header (SRT/VTT cues continue after the
last one, so players show both sessions in order), or, with `resume`, the last session goes on after its
last complete record.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from .errors import UsageError
from .files import append_synced, open_append, truncate
from .notes_tail import Record, parse_record, tail
from .stt.types import Utterance

FORMATS = ("txt", "md", "srt", "vtt", "jsonl")
SESSION_GAP = 1.0
"""Seconds between the last cue of an earlier session and the first of the new one (SRT/VTT)."""


def format_for(path: Path | None, fmt: str | None) -> str:
    """--format, else the output file's extension, else txt."""
    if fmt:
        if fmt not in FORMATS:
            raise UsageError(f"unknown notes format {fmt!r}; one of: {', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower().lstrip(".") if path else ""
    return (
        {"markdown": "md", "text": "txt", "json": "jsonl"}.get(suffix, suffix)
        if suffix in (*FORMATS, "markdown", "text", "json")
        else "txt"
    )


def clock(seconds: float, sep: str = ".") -> str:
    """HH:MM:SS.mmm (SRT uses a comma)."""
    ms = round(max(0.0, seconds) * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _last_cue(text: str) -> tuple[int, float]:
    """(last cue number, end seconds of the last cue) of an SRT/VTT text."""
    ends = re.findall(r"-->\s*(\d+):(\d{2}):(\d{2})[.,](\d{3})", text)
    numbers = re.findall(r"(?m)^(\d+)\s*\n\d+:\d{2}:\d{2}[.,]\d{3}\s*-->", text)
    end = 0.0
    if ends:
        h, m, s, ms = (int(x) for x in ends[-1])
        end = h * 3600 + m * 60 + s + ms / 1000
    return (int(numbers[-1]) if numbers else len(ends)), end


class NoteWriter:
    """Appends utterances to a notes file in one of FORMATS, or hands the text to `echo` (the command line's
    stdout) when there is no file."""

    def __init__(
        self,
        path: Path | None,
        fmt: str,
        *,
        overwrite: bool = False,
        source: str = "",
        echo: Callable[[str], None] | None = None,
        resume: bool = False,
    ) -> None:
        self.path = path
        self.resume = resume
        self.echo = echo
        self.fmt = fmt
        self.overwrite = overwrite
        self.source = source
        self.started = time.strftime("%Y-%m-%d %H:%M:%S")
        self.count = 0
        self.words = 0
        self._offset = 0.0
        self._index = 0
        self._fd: int | None = None
        self._header_text = ""
        self._truncate = False
        self._last: list[Record] = []
        """With `resume`: the records of the session so far that share the latest start (new ones that
        match them, or start earlier, are already in the file)."""
        self.resumed_at = 0.0
        """With `resume`: seconds into the input where the last record already written starts."""
        self.resumed_texts: list[str] = []
        """With `resume`: what the records of the session so far say."""

    # -- lifecycle ------------------------------------------------------------------------------
    def open(self) -> None:
        """Open the file; the session header is written with the first record, so a failed or silent run
        leaves an existing file as it was."""
        if self.path is None:
            if self.echo is None:
                raise UsageError("notes need a file or an echo")
            self._header_text = self._header(new_file=True)
            return
        if self.path.is_dir():
            raise UsageError(f"{self.path} is a folder; name a notes file")
        existing = self.path.is_file() and self.path.stat().st_size > 0 and not self.overwrite
        if existing and self.resume:
            self._open_resumed()
            return
        if existing and self.fmt in ("srt", "vtt"):
            self._index, last_end = _last_cue(self.path.read_text(encoding="utf-8", errors="replace"))
            self._offset = last_end + SESSION_GAP if self._index else 0.0
        try:
            self._fd = open_append(self.path)
        except OSError as exc:
            raise UsageError(f"cannot write notes to {self.path}: {exc.strerror or exc}") from None
        self._truncate = not existing
        self._header_text = self._header(new_file=not existing)

    def _open_resumed(self) -> None:
        """Continue the last session: cut a torn last record, pick up the cue numbering and offset, and note
        where the records end."""
        assert self.path is not None
        raw = self.path.read_bytes()
        last = tail(self.fmt, raw)
        if last.source and self.source and Path(last.source).name != Path(self.source).name:
            raise UsageError(
                f"the last session in {self.path} is of {last.source}, not {self.source}: resume it with that input"
            )
        text = raw[: last.keep].decode("utf-8", errors="replace")
        if self.fmt == "vtt":
            index, end = _last_cue(text[: last.session])
            self._offset = end + SESSION_GAP if index else 0.0
        if self.fmt == "srt":
            self._index = _last_cue(text)[0]
        self.resumed_texts = [r.text for r in last.records]
        if last.records:
            key = last.records[-1].key
            self._last = [r for r in last.records if r.key == key]
            self.resumed_at = max(0.0, key / 1000 - self._offset)
        try:
            self._fd = open_append(self.path)
            if last.keep < len(raw):
                os.ftruncate(self._fd, last.keep)
                os.fsync(self._fd)
        except OSError as exc:
            raise UsageError(f"cannot write notes to {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> NoteWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- records --------------------------------------------------------------------------------
    def _header(self, new_file: bool) -> str:
        source = f" ({self.source})" if self.source else ""
        if self.fmt == "md":
            return f"{'' if new_file else chr(10)}## Session {self.started}{source}\n\n"
        if self.fmt == "txt":
            return f"{'' if new_file else chr(10)}# session {self.started}{source}\n"
        if self.fmt == "vtt":
            head = "WEBVTT\n\n" if new_file else ""
            return f"{head}NOTE session {self.started}{source}\n\n"
        if self.fmt == "jsonl":
            return (
                json.dumps({"type": "session", "started": self.started, "source": self.source}, ensure_ascii=False)
                + "\n"
            )
        return ""

    def _record(self, u: Utterance, translation: str | None, index: int) -> str:
        start, end = u.start + self._offset, u.end + self._offset
        text = u.text if translation is None else f"{u.text}\n{translation}"
        if self.fmt == "txt":
            return f"[{clock(start)} - {clock(end)}] {u.text}{'' if translation is None else '  =>  ' + translation}\n"
        if self.fmt == "md":
            return f"- `{clock(start)[:8]}` {u.text}{'' if translation is None else chr(10) + '  ' + translation}\n"
        if self.fmt == "srt":
            return f"{index}\n{clock(start, ',')} --> {clock(end, ',')}\n{text}\n\n"
        if self.fmt == "vtt":
            return f"{clock(start)} --> {clock(end)}\n{text}\n\n"
        words = [
            {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3), "confidence": round(w.confidence, 3)}
            for w in u.words
        ]
        record: dict[str, object] = {
            "type": "utterance",
            "start": round(u.start, 3),
            "end": round(u.end, 3),
            "text": u.text,
            "language": u.language,
            "words": words,
        }
        if translation is not None:
            record["translation"] = translation
        return json.dumps(record, ensure_ascii=False) + "\n"

    def write(self, u: Utterance, translation: str | None = None) -> bool:
        """Append one final utterance (with its translation, for an interpreter's transcript), durably. False
        when a resumed session already holds it."""
        record = self._record(u, translation, self._index + 1)
        if self._written(record):
            return False
        self._index += 1
        self.count += 1
        self.words += len(u.text.split())
        self._emit(record)
        return True

    def _written(self, record: str) -> bool:
        """Whether a resumed session already holds this record (it starts before the last one there, or is
        one of the last ones). The first new record ends the comparison."""
        if not self._last:
            return False
        parsed = parse_record(self.fmt, record)
        if parsed is not None and (
            parsed.key < self._last[-1].key or any(parsed == r for r in self._last if r.key == parsed.key)
        ):
            return True
        self._last = []
        return False

    def append_text(self, text: str) -> None:
        """Append free text (a summary) as is."""
        self._emit(text)

    def _emit(self, text: str) -> None:
        if not text:
            return
        text, self._header_text = self._header_text + text, ""
        if self._fd is None:
            assert self.echo is not None
            self.echo(text)
            return
        if self._truncate:  # --overwrite: the old content goes only when the new has something to say
            truncate(self._fd)
            self._truncate = False
        append_synced(self._fd, text.encode("utf-8"))
