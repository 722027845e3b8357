"""For each seed family, the prompt we build for a system + user + assistant + user conversation is, token for
token, what the model's official chat template produces (edge_assistant/data/templates, sources named there).

Both our paths are checked: the family's built-in format (used when a GGUF has no template) and the GGUF's
own template (which real files and our twins carry). Tokens come from each family's tokenizer: llama.cpp's
vocab-only GGUFs for Llama 3 and Phi-3, the twins' vocabularies (with the family's special tokens) for Gemma
and Ministral. BOS is the tokenizer's, as llama.cpp adds it: the official text is rendered with an empty
bos_token, and a template that writes bos_token writes it first and once.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from edge_assistant.catalog import load_catalog
from edge_assistant.llm.formats import choose_format, merge_system
from edge_assistant.llm.options import Message
from edge_assistant.twins import chat_template, write_f16

CONVO = [
    Message("system", "You are a helpful voice assistant. Answer briefly."),
    Message("user", "What is the capital of France?"),
    Message("assistant", "Paris."),
    Message("user", "And of Italy?"),
]
MODELS = {
    "llama3": "llama-3.2-1b-instruct",
    "gemma": "gemma-2-2b-it",
    "phi3": "phi-3.5-mini-instruct",
    "ministral3": "ministral-3-3b-instruct",
}
EOS = {"llama3": "<|eot_id|>", "gemma": "<eos>", "phi3": "<|endoftext|>", "ministral3": "</s>"}
BOS = {"llama3": "<|begin_of_text|>", "gemma": "<bos>", "phi3": "<s>", "ministral3": "<s>"}


def official(family: str, messages: list[Message], bos: str) -> str:
    """The publisher's template rendered as transformers' apply_chat_template does."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    template = chat_template(family)
    assert template is not None
    return env.from_string(template).render(
        messages=[{"role": m.role, "content": m.content} for m in messages],
        bos_token=bos,
        eos_token=EOS[family],
        add_generation_prompt=True,
    )


@pytest.fixture(scope="session")
def vocabs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Vocab-only GGUFs of each family (no weights): the tokenizer and metadata a twin carries."""
    out = tmp_path_factory.mktemp("vocabs")
    catalog = load_catalog()
    paths = {}
    for family, model_id in MODELS.items():
        paths[family] = out / f"{family}.gguf"
        write_f16(catalog.llm(model_id), paths[family], out, vocab_only=True)
    return paths


def _llm(path: Path) -> Any:
    from llama_cpp import Llama

    from edge_assistant.llm.local import quiet_llama_log

    quiet_llama_log(False)
    return Llama(str(path), vocab_only=True, verbose=False)


@pytest.mark.parametrize("family", MODELS)
def test_prompt_is_the_official_template_token_for_token(family: str, vocabs: dict[str, Path]) -> None:
    model = load_catalog().llm(MODELS[family])
    # Gemma's template rejects a system role; Google's advice is to put instructions in the first user turn,
    # which is what we send it (the template itself then renders the merged conversation).
    sent = merge_system(CONVO) if family == "gemma" else CONVO
    text = official(family, sent, bos="")
    with_bos = official(family, sent, bos=BOS[family])
    assert with_bos in (text, BOS[family] + text), "a template writes BOS once, first, or not at all"
    llm = _llm(vocabs[family])
    try:
        expected = llm.tokenize(text.encode(), add_bos=True, special=True)
        fallback = choose_format(None, model.arch, model.family).render(CONVO)
        own = choose_format(llm.metadata.get("tokenizer.chat_template"), model.arch, model.family, EOS[family])
        for name, prompt in (("built-in format", fallback), ("GGUF template", own.render(CONVO))):
            got = llm.tokenize(prompt.encode(), add_bos=True, special=True)
            assert got == expected, f"{family} {name}:\n{prompt!r}\n!=\n{text!r}"
        for marker in {"llama3": ["<|eot_id|>"], "gemma": ["<end_of_turn>"], "phi3": ["<|end|>"]}.get(
            family, ["[INST]", "[/INST]", "[SYSTEM_PROMPT]"]
        ):
            ids = llm.tokenize(marker.encode(), add_bos=False, special=True)
            assert len(ids) == 1 and ids[0] in expected, f"{marker} is one special token of the {family} prompt"
    finally:
        llm.close()


def test_llama3_header_carries_todays_date_like_the_official_template() -> None:
    prompt = choose_format(None, "llama", "llama3").render(CONVO)
    assert "Cutting Knowledge Date: December 2023\nToday Date: " + datetime.date.today().strftime("%d %b %Y") in prompt
    alone = choose_format(None, "llama", "llama3").render([Message("user", "Hi")])
    assert alone == official("llama3", [Message("user", "Hi")], bos=""), "a system header even without a system turn"


def test_gemma_official_template_refuses_a_system_turn() -> None:
    with pytest.raises(ValueError, match="System role not supported"):
        official("gemma", CONVO, bos="")
