"""Chat formats: the GGUF's own template when it has one, else the family's known format.

Every format renders messages to prompt text without the BOS token (the tokenizer adds it when the
model asks for it) and names the strings that end an answer.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ModelFileError, UsageError
from .options import Message
from .template import ChatTemplate

Render = Callable[[Sequence[Message]], str]

STOPS: dict[str, tuple[str, ...]] = {
    "chatml": ("<|im_end|>", "<|im_start|>"),
    "llama3": ("<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>"),
    "gemma": ("<end_of_turn>", "<start_of_turn>"),
    "phi3": ("<|end|>", "<|endoftext|>", "<|user|>", "<|assistant|>"),
    "mistral": ("</s>", "[INST]"),
    "ministral3": ("</s>", "[INST]"),
}
ARCH_FAMILY = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "phi3": "phi3",
    "qwen2": "chatml",
    "qwen3": "chatml",
    "mistral3": "ministral3",
}


@dataclass(frozen=True)
class ChatFormat:
    """How to turn messages into a prompt, and when the answer ends."""

    name: str
    """The family, or 'gguf:<family>' when the model's own template renders."""
    family: str
    render: Render
    stop: tuple[str, ...]


def merge_system(messages: Sequence[Message]) -> list[Message]:
    """Fold system messages into the first user turn (for families without a system role)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    rest = [m for m in messages if m.role != "system"]
    if not system:
        return rest
    if rest and rest[0].role == "user":
        return [Message("user", f"{system}\n\n{rest[0].content}"), *rest[1:]]
    return [Message("user", system), *rest]


def _chatml(messages: Sequence[Message]) -> str:
    body = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def today() -> str:
    """The date as Llama 3.2's official template writes it (its strftime_now("%d %b %Y"))."""
    return datetime.date.today().strftime("%d %b %Y")


def _llama3(messages: Sequence[Message]) -> str:
    # As meta-llama/Llama-3.2-*-Instruct's template: a system header always, with the knowledge cut-off and
    # today's date before the (first) system message.
    system = messages[0].content.strip() if messages and messages[0].role == "system" else ""
    rest = messages[1:] if messages and messages[0].role == "system" else messages
    head = (
        "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        f"Today Date: {today()}\n\n{system}<|eot_id|>"
    )
    body = "".join(f"<|start_header_id|>{m.role}<|end_header_id|>\n\n{m.content.strip()}<|eot_id|>" for m in rest)
    return head + body + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def _gemma(messages: Sequence[Message]) -> str:
    turns = merge_system(messages)
    body = "".join(
        f"<start_of_turn>{'model' if m.role == 'assistant' else 'user'}\n{m.content.strip()}<end_of_turn>\n"
        for m in turns
    )
    return body + "<start_of_turn>model\n"


def _phi3(messages: Sequence[Message]) -> str:
    body = "".join(f"<|{m.role}|>\n{m.content}<|end|>\n" for m in messages)
    return body + "<|assistant|>\n"


def _mistral(messages: Sequence[Message]) -> str:
    turns = merge_system(messages)
    out = []
    for m in turns:
        out.append(f"[INST] {m.content.strip()} [/INST]" if m.role == "user" else f" {m.content.strip()}</s>")
    return "".join(out)


def _ministral3(messages: Sequence[Message]) -> str:
    # As Mistral AI's Ministral 3 (2512) template. Without a system message that template adds its own long
    # default one (a persona with dates); we add none.
    out = []
    rest = messages
    if messages and messages[0].role == "system":
        out.append(f"[SYSTEM_PROMPT]{messages[0].content}[/SYSTEM_PROMPT]")
        rest = messages[1:]
    for m in rest:
        out.append(f"[INST]{m.content}[/INST]" if m.role == "user" else f"{m.content}</s>")
    return "".join(out)


FAMILY_RENDER: dict[str, Render] = {
    "chatml": _chatml,
    "llama3": _llama3,
    "gemma": _gemma,
    "phi3": _phi3,
    "mistral": _mistral,
    "ministral3": _ministral3,
}


def family_for(arch: str, family: str | None = None) -> str:
    """The catalog's family, else a guess from the GGUF architecture (chatml when unknown)."""
    if family:
        if family not in FAMILY_RENDER:
            raise UsageError(f"unknown chat format family {family!r}; one of: {', '.join(FAMILY_RENDER)}")
        return family
    return ARCH_FAMILY.get(arch, "chatml")


def template_render(template: str, family: str, eos_token: str, model: str = "the model") -> Render:
    """Render with the model's own Jinja chat template (sandboxed and bounded, `llm/template.py`), BOS left to the
    tokenizer. A template that does not parse or fails on a plain conversation is a ModelFileError now, at load."""
    chat = ChatTemplate(template, model=model, eos_token=eos_token)

    def run(turns: Sequence[Message]) -> str:
        return chat.render([{"role": m.role, "content": m.content} for m in turns])

    def render(messages: Sequence[Message]) -> str:
        if family == "gemma" or not any(m.role == "system" for m in messages):
            return run(merge_system(messages))
        try:
            prompt = run(messages)
        except ModelFileError:  # some templates refuse a system role (Mistral's): say it in the first user turn
            return run(merge_system(messages))
        # Some templates (Phi-3 mini's) silently drop system messages: keep the instructions in the first user turn.
        if any(m.role == "system" and m.content.strip() not in prompt for m in messages):
            return run(merge_system(messages))
        return prompt

    render([Message("system", "You are helpful."), Message("user", "Hello.")])
    return render


def choose_format(
    template: str | None, arch: str, family: str | None = None, eos_token: str = "", model: str = "the model"
) -> ChatFormat:
    """The model's template when present, the family's format otherwise (`model` names it in errors)."""
    fam = family_for(arch, family)
    stops = STOPS[fam] + ((eos_token,) if eos_token and eos_token not in STOPS[fam] else ())
    if template:
        return ChatFormat(f"gguf:{fam}", fam, template_render(template, fam, eos_token, model), stops)
    return ChatFormat(fam, fam, FAMILY_RENDER[fam], stops)
