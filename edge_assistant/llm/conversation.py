"""A conversation bounded by the model's context: oldest turns go first, the system prompt stays."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from ..errors import ContextOverflowError
from .backend import Backend
from .options import GenerationOptions, Message, Reply

Notify = Callable[[str], None]


@dataclass
class Conversation:
    """Turns with one backend; `ask` streams the answer and records the turn."""

    backend: Backend
    system: str | None = None
    options: GenerationOptions = field(default_factory=GenerationOptions)
    notify: Notify = lambda message: None
    turns: list[Message] = field(default_factory=list)
    reserve: int = 256
    """Tokens kept free for the answer when trimming history."""

    @property
    def prefix(self) -> list[Message]:
        return [Message("system", self.system)] if self.system else []

    def reset(self) -> None:
        self.turns.clear()

    def fit(self, user: str) -> list[Message]:
        """The messages to send: as much recent history as fits, the system prompt and the new turn."""
        new = Message("user", user)
        budget = self.backend.context_length - min(self.reserve, self.options.max_tokens)
        turns = list(self.turns)
        dropped = 0
        while True:
            messages = [*self.prefix, *turns, new]
            if self.backend.count_tokens(messages) <= budget:
                break
            if not turns:
                if self.backend.count_tokens([*self.prefix, new]) >= self.backend.context_length:
                    raise ContextOverflowError(
                        f"the message is too long for {self.backend.name}'s context of "
                        f"{self.backend.context_length} tokens; shorten it"
                    )
                break
            turns = turns[2:] if len(turns) > 1 else []
            dropped += 1
        if dropped:
            self.notify(f"context full: dropped the {dropped} oldest turn(s) of the conversation")
            self.turns = turns
        return messages

    def ask(self, user: str, reply: Reply | None = None) -> Generator[str, None, None]:
        """Stream the answer to `user`; the turn (even an interrupted one) joins the history."""
        reply = reply if reply is not None else Reply()
        messages = self.fit(user)
        try:
            yield from self.backend.stream(messages, self.options, reply)
        finally:
            self.turns += [Message("user", user), Message("assistant", reply.text)]
