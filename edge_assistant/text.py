"""Text helpers for speech: cut a streamed answer into sentences, strip what should not be read aloud."""

from __future__ import annotations

import re
from collections.abc import Iterator

ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "mt",
    "ft",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "no",
    "approx",
    "prof",
    "inc",
    "jr",
    "sr",
    "fig",
    "vol",
}
END = re.compile(r"([.!?…。！？]+)([\"')\]]*)(\s+|$)")
MARKDOWN = re.compile(r"(\*\*|__|`+|^#+\s*|^\s*[-*•]\s+|^\s*\d+\.\s+)", re.M)


def speakable(text: str) -> str:
    """Without markdown marks and template debris; spaces collapsed."""
    text = MARKDOWN.sub("", text)
    text = re.sub(r"<\|?[a-z_]+\|?>", "", text)
    return re.sub(r"\s+", " ", text).strip()


SENTENCE_BREAK = re.compile(r"(?<=[.!?…。！？])\s+|(?<=[。！？])")


def split_sentences(text: str) -> list[str]:
    """Whole text cut at sentence ends (. ! ? … and the CJK 。！？); empty parts dropped."""
    return [part.strip() for part in SENTENCE_BREAK.split(text) if part.strip()]


CLAUSE = re.compile(r"[,;:]\s")


class SentenceSplitter:
    """Feed text pieces as they stream; get whole sentences as soon as they end.

    With `eager_words`, the very first piece may end at a comma once it has that many words, so a long
    first sentence starts being spoken sooner.
    """

    def __init__(self, min_chars: int = 12, eager_words: int = 0) -> None:
        self.buffer = ""
        self.min_chars = min_chars
        self.eager_words = eager_words

    def feed(self, piece: str) -> Iterator[str]:
        self.buffer += piece
        while True:
            cut = self._cut()
            if cut is None:
                return
            sentence, self.buffer = self.buffer[:cut].strip(), self.buffer[cut:]
            if sentence:
                yield sentence

    def _cut(self) -> int | None:
        cut = self._sentence_cut()
        if cut is None and self.eager_words:
            for match in CLAUSE.finditer(self.buffer):
                if len(self.buffer[: match.start()].split()) >= self.eager_words:
                    cut = match.end()
                    break
        if cut is not None:
            self.eager_words = 0
        return cut

    def _sentence_cut(self) -> int | None:
        newline = self.buffer.find("\n")
        for match in END.finditer(self.buffer):
            if match.end() == len(self.buffer) and not match.group(3):
                break  # the answer may go on ("3." of "3.5"): wait for what follows
            candidate = self.buffer[: match.start()].strip()
            last_word = candidate.split()[-1].lower().rstrip(".") if candidate.split() else ""
            if last_word in ABBREVIATIONS or len(candidate) < self.min_chars:
                continue
            end = match.end()
            if 0 <= newline < end:
                return newline + 1
            return end
        if newline >= 0 and self.buffer[:newline].strip():
            return newline + 1
        return None

    def flush(self) -> Iterator[str]:
        rest, self.buffer = self.buffer.strip(), ""
        if rest:
            yield rest
