"""Bullet-point notes of a transcript of any length: pieces that fit the model's context are summarised one by
one, then their summaries are summarised (again in pieces, if they still do not fit)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..llm.backend import Backend
from ..llm.conversation import Conversation
from ..llm.options import GenerationOptions, Message

SUMMARY_SYSTEM = (
    "You turn meeting transcripts into notes. Write 3 to 8 short bullet points (lines starting with "
    "'- ') with the decisions, facts and tasks. No introduction."
)
OPTIONS = GenerationOptions(temperature=0.2, top_k=20, repeat_penalty=1.15, seed=0, max_tokens=300)
"""At most a quarter of the context goes to an answer, so two summaries always fit in the next round."""
MARGIN = 64
"""Tokens kept free beyond the answer's maximum length."""


@dataclass(frozen=True)
class Summary:
    text: str
    pieces: int
    """How many parts the transcript was cut into (1: it fit the context at once)."""


def _prompt(text: str, partial: bool) -> str:
    if partial:
        return f"Notes from consecutive parts of one meeting:\n{text}\n\nMerged notes:"
    return f"Transcript:\n{text}\n\nNotes:"


class Summarizer:
    """Summaries with one backend (opened by the caller)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        options = replace(OPTIONS, max_tokens=min(OPTIONS.max_tokens, backend.context_length // 4))
        self.conversation = Conversation(backend, SUMMARY_SYSTEM, options)
        self.budget = max(64, backend.context_length - options.max_tokens - MARGIN)

    def _tokens(self, text: str, partial: bool) -> int:
        return self.backend.count_tokens([*self.conversation.prefix, Message("user", _prompt(text, partial))])

    def _split_long(self, line: str, partial: bool) -> list[str]:
        """A line too long for one piece, in word-boundary parts that each fit."""
        if self._tokens(line, partial) <= self.budget:
            return [line]
        words = line.split()
        if len(words) < 2:
            return [line[: len(line) // 2], line[len(line) // 2 :]]
        half = len(words) // 2
        return self._split_long(" ".join(words[:half]), partial) + self._split_long(" ".join(words[half:]), partial)

    def pieces(self, lines: list[str], partial: bool = False) -> list[list[str]]:
        """`lines` in consecutive groups, each of which fits the context with the prompt around it."""
        base = self._tokens("", partial)
        groups: list[list[str]] = [[]]
        used = base
        for line in (part for whole in lines for part in self._split_long(whole, partial)):
            cost = self._tokens(line, partial) - base + 1
            if groups[-1] and used + cost > self.budget:
                groups.append([])
                used = base
            groups[-1].append(line)
            used += cost
        out: list[list[str]] = []
        for group in groups:  # the estimate per line can miss by a token or two: check each whole
            out += self._fit(group, partial)
        return [g for g in out if g]

    def _fit(self, group: list[str], partial: bool) -> list[list[str]]:
        if len(group) < 2 or self._tokens("\n".join(group), partial) <= self.budget:
            return [group]
        half = len(group) // 2
        return self._fit(group[:half], partial) + self._fit(group[half:], partial)

    def _ask(self, lines: list[str], partial: bool) -> str:
        self.conversation.reset()
        return "".join(self.conversation.ask(_prompt("\n".join(lines), partial))).strip()

    def __call__(self, transcript: list[str]) -> Summary:
        groups = self.pieces(transcript)
        level = [self._ask(g, partial=False) for g in groups]
        while len(level) > 1:
            merged = self.pieces(level, partial=True)
            if len(merged) >= len(level):  # each summary alone fills the context: merge pairwise
                merged = [level[i : i + 2] for i in range(0, len(level), 2)]
            level = [self._ask(g, partial=True) for g in merged]
        return Summary(level[0] if level else "", len(groups))


def summarize(backend: Backend, transcript: list[str]) -> Summary:
    """Bullet-point notes of a transcript, however long (`backend` is open)."""
    return Summarizer(backend)(transcript)
