"""Prompt formats per family, checked against the families' real tokenizers (vocab-only GGUFs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge_assistant.errors import ModelFileError
from edge_assistant.llm.formats import STOPS, choose_format, merge_system
from edge_assistant.llm.options import Message
from tests.ggufmaker import with_chat_template
from tests.helpers import run

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


# -- hostile templates ----------------------------------------------------------------------------------------
TURNS = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
HOSTILE = {
    "syntax error": ("{% for m in messages %}{{ m.content }", "does not parse: unexpected '}' (line 1)"),
    "sandbox violation": (
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "failed: SecurityError: access to attribute '__init__'",
    ),
    "undefined variable": ("{{ conversation.turns[0] }}", "failed: UndefinedError: 'conversation' is undefined"),
    "its own error": ("{{ raise_exception('roles must alternate') }}", "failed: ValueError: roles must alternate"),
    "endless recursion": ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "recurses without end"),
    "loops for ever": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}" + TURNS,
        "ran longer than 2 s; stopped",
    ),
    "megabytes of output": ("{% for i in range(100000) %}{{ 'abcdefghij' * 10 }}{% endfor %}", "renders more than"),
    "a huge repeat": ("{{ 'x' * 1000000000 }}", "renders more than"),
    "a huge power": ("{{ 10 ** 10 ** 10 }}", "renders more than"),
    "doubling joins": ("{% set s = 'ab' %}" + "{% set s = s ~ s %}" * 40 + "{{ s }}", "renders more than"),
    "a huge padding": ("{{ 'a' | center(1000000000) }}", "renders more than"),
    "a huge format width": ("{{ '{:>999999999}'.format('a') }}", "renders more than"),
    "a huge printf width": ("{{ '%999999999s' % 'a' }}", "renders more than"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_template_is_one_line_naming_the_model(case: str) -> None:
    template, why = HOSTILE[case]
    with pytest.raises(ModelFileError) as caught:
        choose_format(template, "llama", "chatml", "</s>", "crafted.gguf")
    message = str(caught.value)
    assert message.startswith("crafted.gguf: its chat template ") and why in message, message
    assert "\n" not in message


@pytest.mark.parametrize("case", ["sandbox violation", "loops for ever", "megabytes of output"])
def test_a_model_with_a_hostile_template_fails_in_one_line(smollm2: Path, tmp_path: Path, case: str) -> None:
    model = with_chat_template(smollm2, tmp_path / "crafted.gguf", HOSTILE[case][0])
    code, out, err = run("ask", "-m", str(model), "hi")
    assert code == 1 and out == ""
    assert err.startswith("error: crafted.gguf: its chat template ") and len(err.strip().splitlines()) == 1, err
