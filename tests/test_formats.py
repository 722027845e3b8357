"""Prompt formats per family, checked against the families' real tokenizers (vocab-only GGUFs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge_assistant.llm.formats import STOPS, choose_format, merge_system
from edge_assistant.llm.options import Message

CONVO = [
    Message("system", "Be brief."),
    Message("user", "Hi"),
    Message("assistant", "Hello!"),
    Message("user", "Capital of France?"),
]


def test_chatml() -> None:
    fmt = choose_format(None, "llama", "chatml")
    assert fmt.render(CONVO) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert fmt.stop[0] == "<|im_end|>"


def test_llama3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge_assistant.llm.formats.today", lambda: "02 Mar 2026")
    fmt = choose_format(None, "llama", "llama3")
    assert fmt.render(CONVO) == (
        "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        "Today Date: 02 Mar 2026\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nCapital of France?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert "<|eot_id|>" in fmt.stop


def test_gemma_merges_system_into_first_user_turn() -> None:
    fmt = choose_format(None, "gemma3")
    assert fmt.family == "gemma"
    assert fmt.render(CONVO) == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nCapital of France?<end_of_turn>\n<start_of_turn>model\n"
    )
    assert fmt.stop[0] == "<end_of_turn>"
    assert merge_system([Message("system", "S")]) == [Message("user", "S")]


def test_phi3() -> None:
    fmt = choose_format(None, "phi3")
    assert fmt.render(CONVO) == (
        "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
        "<|user|>\nCapital of France?<|end|>\n<|assistant|>\n"
    )
    assert fmt.stop[0] == "<|end|>"


def test_mistral() -> None:
    fmt = choose_format(None, "llama", "mistral")
    assert fmt.render(CONVO) == "[INST] Be brief.\n\nHi [/INST] Hello!</s>[INST] Capital of France? [/INST]"


def test_gemma_template_from_gguf_gets_no_system_role() -> None:
    template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not "
        "supported') }}{% endif %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
        "{{ m['content'] }}<end_of_turn>\n{% endfor %}<start_of_turn>model\n"
    )
    fmt = choose_format(template, "gemma2", "gemma")
    assert fmt.name == "gguf:gemma"
    assert fmt.render(CONVO).startswith("<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>")


def _vocab(vocab_dir: Path, name: str) -> Any:
    from llama_cpp import Llama

    from edge_assistant.llm.local import quiet_llama_log

    quiet_llama_log(False)
    return Llama(str(vocab_dir / f"ggml-vocab-{name}.gguf"), vocab_only=True, verbose=False)


def _is_eog(llm: Any, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, token))


@pytest.mark.parametrize(
    ("vocab", "family", "specials", "stop"),
    [
        ("llama-bpe", "llama3", ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], "<|eot_id|>"),
        ("phi-3", "phi3", ["<|user|>", "<|assistant|>", "<|end|>"], "<|end|>"),
        ("qwen2", "chatml", ["<|im_start|>", "<|im_end|>"], "<|im_end|>"),
    ],
)
def test_rendered_prompt_tokenizes_to_special_tokens(
    vocab_dir: Path, vocab: str, family: str, specials: list[str], stop: str
) -> None:
    llm = _vocab(vocab_dir, vocab)
    gguf_template = llm.metadata.get("tokenizer.chat_template")
    for fmt in {choose_format(None, "x", family), choose_format(gguf_template, "x", family)}:
        tokens = llm.tokenize(fmt.render(CONVO).encode(), add_bos=False, special=True)
        for special in specials:
            ids = llm.tokenize(special.encode(), add_bos=False, special=True)
            assert len(ids) == 1, f"{special} is not one token in {vocab}"
            assert ids[0] in tokens, f"{special} missing from the {fmt.name} prompt"
        stop_ids = llm.tokenize(stop.encode(), add_bos=False, special=True)
        assert len(stop_ids) == 1 and _is_eog(llm, stop_ids[0]), f"{stop} does not end generation in {vocab}"
        assert stop in fmt.stop
    llm.close()


def test_mistral_prompt_on_spm_vocab(vocab_dir: Path) -> None:
    llm = _vocab(vocab_dir, "llama-spm")
    fmt = choose_format(None, "llama", "mistral")
    tokens = llm.tokenize(fmt.render(CONVO).encode(), add_bos=True, special=True)
    assert tokens[0] == llm.token_bos()
    eos = llm.tokenize(b"</s>", add_bos=False, special=True)
    assert eos == [llm.token_eos()] and _is_eog(llm, eos[0]) and eos[0] in tokens
    llm.close()


def test_every_family_has_stops() -> None:
    assert set(STOPS) == {"chatml", "llama3", "gemma", "phi3", "mistral", "ministral3"}


def test_template_that_drops_system_keeps_it_in_the_first_user_turn(vocab_dir: Path) -> None:
    llm = _vocab(vocab_dir, "phi-3")
    fmt = choose_format(llm.metadata["tokenizer.chat_template"], "phi3", "phi3")
    assert fmt.render(CONVO).startswith("<|user|>\nBe brief.\n\nHi<|end|>\n<|assistant|>\n")
    llm.close()
