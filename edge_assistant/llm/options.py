"""Generation options and the records that flow out of a backend."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GenerationOptions:
    """How to sample an answer. Sampling fields left None take the model's defaults (llm/sampling.py)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None
    min_p: float | None = None
    max_tokens: int = 512
    """Upper bound on generated tokens."""
    seed: int | None = None
    """Fixed seed for reproducible sampling; None for a fresh random seed every answer."""
    stop: tuple[str, ...] = ()
    """Extra stop strings, on top of the chat format's own."""


GREEDY = GenerationOptions(temperature=0.0, top_k=1, repeat_penalty=1.0, seed=0)


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: str
    """system, user or assistant."""
    content: str


@dataclass(frozen=True)
class Timings:
    """Where the time of one answer went, in seconds."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens whose KV state was reused instead of evaluated."""
    completion_tokens: int = 0
    ttft: float = 0.0
    """Time from the request to the first generated text."""
    total: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        gen = self.total - self.ttft
        return (self.completion_tokens - 1) / gen if gen > 0 and self.completion_tokens > 1 else 0.0


@dataclass
class Reply:
    """A finished (or interrupted) answer."""

    text: str = ""
    finish_reason: str = ""
    """stop, length or interrupted."""
    timings: Timings = field(default_factory=Timings)
