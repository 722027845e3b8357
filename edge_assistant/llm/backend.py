"""The backend protocol: what the modes need from a language model."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Protocol, runtime_checkable

from .options import GenerationOptions, Message, Reply


class Backend(Protocol):
    """A loaded chat model. `open()` loads; `close()` frees; streams yield text pieces."""

    name: str
    """Model name for display and logs."""
    context_length: int
    """Tokens the context holds (prompt + answer)."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the rendered prompt of these messages takes."""
        ...

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions, reply: Reply
    ) -> Generator[str, None, None]:
        """Yield the answer piece by piece; fill `reply` (text, finish_reason, timings) as it goes."""
        ...

    def warm(self, prefix: Sequence[Message]) -> float:
        """Evaluate a fixed prefix (e.g. the system prompt) once so later turns reuse it; return seconds spent."""
        ...


@runtime_checkable
class Reader(Protocol):
    """A backend that can say how finished the last message reads."""

    def ends_here(self, messages: Sequence[Message]) -> float:
        """The probability the model gives to the last message ending where it does (a closing mark or the end
        of the turn coming next)."""
        ...
