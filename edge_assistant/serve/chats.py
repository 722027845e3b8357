"""Conversations the server keeps between requests, by the id a client gives, the oldest forgotten first."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ..llm.backend import Backend
from ..llm.conversation import Conversation
from ..llm.options import GenerationOptions
from ..modes.assistant import OPTIONS


@dataclass
class Chats:
    """At most `keep` conversations; a request without an id gets a fresh one that is not kept."""

    backend: Backend
    system: str
    options: GenerationOptions = OPTIONS
    keep: int = 16
    _kept: OrderedDict[str, Conversation] = field(default_factory=OrderedDict)

    def get(self, conversation_id: str | None) -> Conversation:
        if not conversation_id:
            return Conversation(self.backend, self.system, self.options)
        chat = self._kept.pop(conversation_id, None) or Conversation(self.backend, self.system, self.options)
        self._kept[conversation_id] = chat
        while len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        return chat
