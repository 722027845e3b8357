from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from edge_assistant.catalog import catalog_text, hub_file, load_catalog, parse_spec, validate
from edge_assistant.docs import models_markdown
from edge_assistant.errors import UsageError

SEED = [
    "gemma-2-2b-it",
    "phi-3.5-mini-instruct",
    "phi-3-mini-4k-instruct",
    "ministral-3-3b-instruct",
    "llama-3.2-1b-instruct",
    "llama-3.2-3b-instruct",
]
SMALL = [
    "gemma-3-270m-it",
    "gemma-3-1b-it",
    "smollm2-135m-instruct",
    "smollm2-360m-instruct",
    "smollm2-1.7b-instruct",
    "qwen2.5-0.5b-instruct",
    "qwen2.5-1.5b-instruct",
]


def test_catalog_file_is_valid() -> None:
    assert validate(tomllib.loads(catalog_text())) == []


def test_validation_catches_mistakes() -> None:
    data = tomllib.loads(catalog_text())
    data["llm"][1]["id"] = data["llm"][0]["id"]
    data["llm"][0]["quants"]["Q4_K_M"]["bytes"] = -1
    data["llm"][0]["quants"]["Q4_K_M"]["sha256"] = "XYZ"
    data["llm"][2]["family"] = "klingon"
    problems = "\n".join(validate(data))
    assert "duplicate id" in problems
    assert "bytes must be a positive integer" in problems
    assert "sha256 must be 64 lowercase hex" in problems
    assert "family must be one of" in problems


def test_seed_and_small_models_are_listed_with_quants() -> None:
    catalog = load_catalog()
    for model_id in SEED + SMALL:
        model = catalog.llm(model_id)
        assert "Q4_K_M" in model.quants, model_id
        assert model.repo, model_id
    with_q8 = [m for m in SEED + SMALL if "Q8_0" in catalog.llm(m).quants]
    assert len(with_q8) >= 11
    with_q4_0 = [m for m in SEED + SMALL if "Q4_0" in catalog.llm(m).quants]
    assert len(with_q4_0) >= 9


def test_speech_models_and_voices() -> None:
    catalog = load_catalog()
    assert catalog.get("vosk-small-en-us-0.15").url.endswith("vosk-model-small-en-us-0.15.zip")  # type: ignore[union-attr]
    assert catalog.get("vosk-small-ja-0.22").language == "ja"  # type: ignore[union-attr]
    assert catalog.get("whisper-tiny.en").repo == "Systran/faster-whisper-tiny.en"  # type: ignore[union-attr]
    assert catalog.get("whisper-base").engine == "whisper"  # type: ignore[union-attr]
    assert catalog.get("piper-en_us-joe-medium").kind == "tts"


def test_unknown_model_lists_close_names() -> None:
    with pytest.raises(UsageError, match=r"unknown model 'llama-3.2-1b'.*llama-3.2-1b-instruct"):
        load_catalog().get("llama-3.2-1b")


def test_unknown_quant_lists_choices() -> None:
    with pytest.raises(UsageError, match="choose one of: Q4_K_M"):
        load_catalog().llm("llama-3.2-1b-instruct").quant("Q3_K_XL")


def test_specs() -> None:
    assert parse_spec("gemma-2-2b-it:Q8_0") == ("gemma-2-2b-it", "Q8_0")
    assert parse_spec("gemma-2-2b-it") == ("gemma-2-2b-it", None)
    raw = hub_file("bartowski/Foo-GGUF/sub/Foo-Q5_K_M.gguf")
    assert raw is not None and (raw.repo, raw.file, raw.quant) == (
        "bartowski/Foo-GGUF",
        "sub/Foo-Q5_K_M.gguf",
        "Q5_K_M",
    )
    assert hub_file("gemma-2-2b-it") is None


def test_readme_table_matches_catalog() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert models_markdown(load_catalog()) in readme, "run scripts/update_readme.py"


@pytest.mark.parametrize("model_id", [m for m in SEED if m != "phi-3-mini-4k-instruct"] + ["smollm2-135m-instruct"])
def test_shape_gives_the_published_parameter_count(model_id: str) -> None:
    model = load_catalog().llm(model_id)
    assert model.shape is not None, model_id
    assert model.shape.params / 1e9 == pytest.approx(model.params_b, rel=0.01)


def test_ministral_is_mistral_ais_own_model_and_the_community_one_says_what_it_is() -> None:
    catalog = load_catalog()
    official = catalog.llm("ministral-3-3b-instruct")
    assert official.repo == "mistralai/Ministral-3-3B-Instruct-2512-GGUF" and official.arch == "mistral3"
    assert official.quant("Q4_K_M").file == "Ministral-3-3B-Instruct-2512-Q4_K_M.gguf"
    assert "seed" in official.tags and "sha256" in official.quant("Q4_K_M").unverified
    community = catalog.llm("ministral-3b-instruct-community")
    assert community.repo == "QuantFactory/Ministral-3b-instruct-GGUF" and "seed" not in community.tags
    assert "not Mistral AI" in community.name
    with pytest.raises(UsageError, match="ministral-3-3b-instruct"):
        catalog.get("ministral-3b-instruct")


def test_validation_catches_bad_shapes_and_sampling() -> None:
    data = tomllib.loads(catalog_text())
    llama = next(m for m in data["llm"] if m["id"] == "llama-3.2-1b-instruct")
    llama["shape"]["kv_heads"] = 5
    llama["shape"]["rope_scaling"] = "magic"
    del llama["shape"]["vocab"]
    llama["sampling"]["top_k"] = -3
    llama["sampling"]["warmth"] = 1
    problems = "\n".join(validate(data))
    assert "heads must be a multiple of kv_heads" in problems
    assert "rope_scaling must be one of" in problems
    assert "missing 'vocab'" in problems
    assert "top_k must be a non-negative integer" in problems
    assert "unknown key 'warmth'" in problems


def test_the_huggingface_hub_pin_matches_what_the_code_imports() -> None:
    """download/ uses httpx2, which only huggingface_hub 2.x brings: the pin must not allow 1.x."""
    from importlib.metadata import version

    from packaging.requirements import Requirement

    root = Path(__file__).parent.parent
    assert "import httpx2" in (root / "edge_assistant" / "download" / "hub.py").read_text()
    deps = [Requirement(d) for d in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]]
    hub = next(r for r in deps if r.name.replace("-", "_") == "huggingface_hub")
    assert not any(hub.specifier.contains(v) for v in ("1.0.0", "1.5.0", "1.99.0")), hub
    assert hub.specifier.contains(version("huggingface_hub")), "the installed huggingface_hub is outside the pin"
