"""Sampling defaults per model: the user's options, else the GGUF's general.sampling.* keys, else the
catalog's (publisher's), else ours; an unset seed is a fresh seed for every answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_assistant.catalog import Sampling, load_catalog
from edge_assistant.cli import main
from edge_assistant.llm.options import GREEDY, GenerationOptions
from edge_assistant.llm.sampling import DEFAULTS, from_gguf, merge, resolve


def test_publishers_sampling_is_catalog_data() -> None:
    catalog = load_catalog()
    llama = catalog.llm("llama-3.2-1b-instruct").sampling
    assert llama is not None and (llama.temperature, llama.top_p) == (0.6, 0.9)
    assert "generation_config.json" in llama.source
    smol = catalog.llm("smollm2-135m-instruct").sampling
    assert smol is not None and smol.temperature is not None and smol.temperature <= 0.2
    qwen = catalog.llm("qwen2.5-0.5b-instruct").sampling
    assert qwen is not None and (qwen.top_k, qwen.repeat_penalty) == (20, 1.05)


def test_gguf_keys_win_over_the_catalog_and_options_over_both() -> None:
    gguf = from_gguf({"general.sampling.temp": 0.3, "general.sampling.top_k": 50, "general.name": "x"})
    assert gguf is not None and gguf.temperature == pytest.approx(0.3) and gguf.top_k == 50
    catalog = Sampling(source="card", temperature=0.6, top_p=0.9)
    merged = merge(gguf, catalog)
    assert (merged.temperature, merged.top_k, merged.top_p) == (pytest.approx(0.3), 50, 0.9)
    assert merged.min_p == DEFAULTS.min_p and merged.repeat_penalty == DEFAULTS.repeat_penalty
    assert "general.sampling" in merged.source and "card" in merged.source
    chosen = resolve(GenerationOptions(temperature=1.2), merged)
    assert chosen.temperature == 1.2 and chosen.top_k == 50
    assert from_gguf({"general.name": "x"}) is None


def test_unset_seed_is_fresh_each_time_and_a_set_one_is_kept() -> None:
    seeds = {resolve(GenerationOptions(), DEFAULTS).seed for _ in range(20)}
    assert len(seeds) > 15
    assert resolve(GenerationOptions(seed=7), DEFAULTS).seed == 7
    assert resolve(GREEDY, DEFAULTS).temperature == 0.0


def test_backend_takes_the_catalog_sampling_of_its_model(smollm2: Path) -> None:
    from edge_assistant.llm.local import LlamaCppBackend

    sampling = load_catalog().llm("smollm2-135m-instruct").sampling
    with LlamaCppBackend(smollm2, sampling=sampling, ctx_cap=512) as backend:
        assert backend.sampling.temperature == 0.2 and backend.sampling.top_p == 0.9
        assert backend.sampling.top_k == DEFAULTS.top_k


def _ask(*args: str, model: str = "smollm2-135m-instruct:Q4_1") -> str:
    result = CliRunner().invoke(main, ["ask", "--json", "-m", model, *args])
    assert result.exit_code == 0, result.stderr
    return str(json.loads(result.stdout)["text"])


@pytest.mark.slow
def test_ask_without_seed_samples_anew_and_with_a_seed_repeats(smollm2: Path) -> None:
    """The file by its path, without the catalog's near-greedy min_p: at temperature 1 the draws differ."""
    prompt = ["--temperature", "1.0", "--max-tokens", "12", "Write a short poem about the sea."]
    free = {_ask(*prompt, model=str(smollm2)) for _ in range(3)}
    assert len(free) > 1, "an unset --seed must give a fresh random seed"
    fixed = {_ask("--seed", "5", *prompt, model=str(smollm2)) for _ in range(2)}
    assert len(fixed) == 1
