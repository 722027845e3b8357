"""Real generation on the embedded tiny models (SmolLM2-135M instruct, Gemma 3 270M base)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.errors import ContextOverflowError, ModelFileError
from edge_assistant.llm.conversation import Conversation
from edge_assistant.llm.local import LlamaCppBackend
from edge_assistant.llm.options import GREEDY, GenerationOptions, Message, Reply
from tests.helpers import TEMPLATE_TOKENS

pytestmark = pytest.mark.slow
SYSTEM = [Message("system", "You are a helpful assistant.")]
QUESTION = [*SYSTEM, Message("user", "What is the capital of France?")]


def answer(backend: LlamaCppBackend, messages: list[Message], options: GenerationOptions = GREEDY) -> Reply:
    reply = Reply()
    assert "".join(backend.stream(messages, options, reply)) == reply.text
    return reply


def test_known_question_gets_the_fact(smol: LlamaCppBackend) -> None:
    reply = answer(smol, QUESTION)
    assert "Paris" in reply.text
    assert reply.finish_reason == "stop"
    assert reply.timings.completion_tokens > 0 and 0 < reply.timings.ttft <= reply.timings.total
    assert not TEMPLATE_TOKENS.search(reply.text)


def test_streaming_equals_non_streaming(smol: LlamaCppBackend) -> None:
    options = GenerationOptions(temperature=0.0, top_k=1, repeat_penalty=1.0, seed=0, max_tokens=40)
    messages = [*SYSTEM, Message("user", "Name three colours.")]
    assert answer(smol, messages, options).text == smol.complete(messages, options).text


def test_seeded_sampling_is_reproducible(smol: LlamaCppBackend) -> None:
    options = GenerationOptions(temperature=0.9, seed=42, max_tokens=30)
    messages = [*SYSTEM, Message("user", "Tell me about cats.")]
    assert answer(smol, messages, options).text == answer(smol, messages, options).text


def test_prefix_cache_gives_the_same_text(smol: LlamaCppBackend) -> None:
    smol.reset()
    cold = answer(smol, QUESTION)
    assert cold.timings.cached_tokens == 0
    smol.reset()
    smol.warm(SYSTEM)
    warm = answer(smol, QUESTION)
    assert warm.text == cold.text
    assert warm.timings.cached_tokens >= smol.count_tokens(SYSTEM) - 4 > 0


def test_warming_after_a_turn_evaluates_only_its_end_and_the_next_header(
    smol: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    smol.reset()
    reply = answer(smol, QUESTION)
    history = [*QUESTION, Message("assistant", reply.text)]
    held = smol.evaluated()
    evaluated: list[int] = []
    real_eval = smol.llm.eval
    monkeypatch.setattr(smol.llm, "eval", lambda tokens: (evaluated.extend(tokens), real_eval(tokens)))
    smol.warm(history)
    monkeypatch.undo()
    after = smol.evaluated()
    assert after[: len(held) - 1] == held[:-1]  # what the context held is kept, not evaluated again
    assert 0 < len(evaluated) <= 8 and after[-len(evaluated) :] == evaluated
    follow_up = [*history, Message("user", "And of Spain?")]
    nxt = answer(smol, follow_up)
    assert nxt.timings.cached_tokens == len(after)
    smol.reset()
    assert answer(smol, follow_up).text == nxt.text


def test_max_tokens_ends_with_length(smol: LlamaCppBackend) -> None:
    options = GenerationOptions(temperature=0.0, top_k=1, seed=0, max_tokens=5)
    reply = answer(smol, [*SYSTEM, Message("user", "Write a long story about a dragon.")], options)
    assert reply.finish_reason == "length"
    assert reply.timings.completion_tokens == 5


def test_closing_the_stream_interrupts(smol: LlamaCppBackend) -> None:
    reply = Reply()
    stream = smol.stream(
        [*SYSTEM, Message("user", "Write a long story about a dragon.")],
        GenerationOptions(temperature=0.0, top_k=1, seed=0, max_tokens=200),
        reply,
    )
    pieces = [next(stream), next(stream)]
    stream.close()
    assert reply.finish_reason == "interrupted"
    assert reply.text == "".join(pieces)


def test_conversation_drops_oldest_turns_when_full(smollm2: Path) -> None:
    notes: list[str] = []
    with LlamaCppBackend(smollm2, threads=2, n_ctx=256) as backend:
        convo = Conversation(
            backend,
            "You are terse.",
            GenerationOptions(temperature=0.0, top_k=1, seed=0, max_tokens=16),
            notify=notes.append,
        )
        for i in range(8):
            list(convo.ask(f"Remember the number {i}. " + "Some filler words to take room. " * 6))
        assert any("dropped" in n for n in notes)
        assert convo.turns[0].role == "user" and len(convo.turns) < 16
        assert backend.count_tokens(convo.fit("next")) <= 256
        with pytest.raises(ContextOverflowError, match="too long"):
            list(convo.ask("word " * 400))


def test_gemma_base_model_uses_the_family_format(gemma: Path) -> None:
    with LlamaCppBackend(gemma, family="gemma", threads=2, ctx_cap=512) as backend:
        assert backend.format is not None and backend.format.name == "gemma"
        prompt = backend.render(QUESTION)
        assert prompt.startswith("<start_of_turn>user\nYou are a helpful assistant.\n\nWhat is the capital")
        tokens = backend.tokens(QUESTION)
        start_of_turn = backend.llm.tokenize(b"<start_of_turn>", add_bos=False, special=True)
        assert tokens[0] == backend.llm.token_bos() and len(start_of_turn) == 1 and tokens[1] == start_of_turn[0]
        reply = answer(backend, QUESTION, GenerationOptions(temperature=0.0, top_k=1, seed=0, max_tokens=24))
        assert reply.timings.completion_tokens > 0
        assert not TEMPLATE_TOKENS.search(reply.text)


def test_not_gguf_and_truncated_files(tmp_path: Path, smollm2: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"definitely not a model")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        LlamaCppBackend(junk).open()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(smollm2.read_bytes()[:30_000_000])
    with pytest.raises(ModelFileError, match="truncated"):
        LlamaCppBackend(cut).open()
