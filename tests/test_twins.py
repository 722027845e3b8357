"""Synthetic twins: the real tensor table of a model, random weights; small twins of every seed family load
and generate through our runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_assistant.bench.twins import twin_cache
from edge_assistant.catalog import load_catalog
from edge_assistant.cli import main
from edge_assistant.errors import UsageError
from edge_assistant.gguf import bytes_per_token, read_gguf
from edge_assistant.llm.local import LlamaCppBackend
from edge_assistant.llm.options import GenerationOptions, Message, Reply
from edge_assistant.twins import build_twin, ensure_twin, tensor_plan, twin_name

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the first run builds the small twins
# One seed model per family, as a small twin (2 layers). Quantizing the full-size vocabulary matrices is what
# takes the time (a minute for Gemma's 256k x 2304 at Q4_K_M on 2 shared cores), so Llama checks Q4_K_M's
# type rules and the others load at Q8_0. Twins are deterministic and named by what they depend on, so the
# shared twin cache keeps them across runs.
FAMILIES = {
    "llama3": ("llama-3.2-1b-instruct", "Q4_K_M"),
    "gemma": ("gemma-2-2b-it", "Q8_0"),
    "phi3": ("phi-3.5-mini-instruct", "Q8_0"),
    "ministral3": ("ministral-3-3b-instruct", "Q8_0"),
}


@pytest.fixture(scope="session")
def twin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("twins")


@pytest.fixture(scope="session")
def small_twins() -> Iterator[dict[str, Path]]:
    catalog = load_catalog()
    yield {family: ensure_twin(catalog.llm(m), q, twin_cache(), layers=2) for family, (m, q) in FAMILIES.items()}


def test_plan_is_the_tensor_table_of_the_real_smollm2(smollm2: Path) -> None:
    model = load_catalog().llm("smollm2-135m-instruct")
    assert model.shape is not None
    real = {t.name: t.dims for t in read_gguf(smollm2).tensors}
    planned = {t.name: t.dims for t in tensor_plan(model.arch, model.shape, model.shape.layers)}
    assert planned == real


def test_twin_has_the_real_files_tensor_types_and_data_size(smollm2: Path, twin_dir: Path) -> None:
    """Quantized by llama.cpp from F16, the twin gets the same type per tensor as the real Q4_1 file."""
    model = load_catalog().llm("smollm2-135m-instruct")
    twin = build_twin(model, "Q4_1", twin_dir / "smollm2-q4_1.gguf", twin_dir)
    real, made = read_gguf(smollm2), read_gguf(twin)
    assert {t.name: (t.dims, t.type) for t in made.tensors} == {t.name: (t.dims, t.type) for t in real.tensors}
    assert bytes_per_token(made) == bytes_per_token(real)
    assert made.metadata["general.architecture"] == "llama"
    assert made.metadata["llama.block_count"] == 30


@pytest.mark.parametrize("family", FAMILIES)
def test_small_twin_loads_speaks_its_template_and_generates(family: str, small_twins: dict[str, Path]) -> None:
    model_id, quant = FAMILIES[family]
    model = load_catalog().llm(model_id)
    info = read_gguf(small_twins[family])
    assert info.architecture == model.arch
    assert info.metadata[f"{model.arch}.block_count"] == 2
    assert info.metadata[f"{model.arch}.embedding_length"] == model.shape.embd  # type: ignore[union-attr]
    ffn = {t.type for t in info.tensors if t.name.endswith(("ffn_gate.weight", "ffn_up.weight"))}
    assert ffn == {12 if quant == "Q4_K_M" else 8}, f"{quant}: FFN matrices of types {ffn}"
    if quant == "Q4_K_M":
        down = {t.name: t.type for t in info.tensors if t.name.endswith("ffn_down.weight")}
        assert 14 in down.values(), "Q4_K_M keeps some ffn_down in Q6_K, as llama-quantize does"
    backend = LlamaCppBackend(small_twins[family], family=model.family, threads=2, ctx_cap=512)
    with backend:
        assert backend.llm.n_vocab() == model.shape.vocab  # type: ignore[union-attr]
        assert backend.format is not None and backend.format.name == f"gguf:{model.family}"
        reply = Reply()
        options = GenerationOptions(temperature=0.0, top_k=1, seed=0, max_tokens=8, stop=("\x00",))
        messages = [Message("system", "Be brief."), Message("user", "Hello?")]
        for _ in backend.stream(messages, options, reply):
            pass
        assert reply.timings.prompt_tokens > 5
        assert reply.timings.completion_tokens >= 1


def test_twin_command_writes_a_small_twin(tmp_path: Path) -> None:
    out = tmp_path / "twin.gguf"
    result = CliRunner().invoke(
        main, ["twin", "smollm2-135m-instruct:Q8_0", "--layers", "1", "-o", str(out), "--cache", str(tmp_path)]
    )
    assert result.exit_code == 0, result.stderr
    info = read_gguf(out)
    assert info.metadata["llama.block_count"] == 1 and {t.type for t in info.tensors if t.dims[-1] > 1} >= {8}
    assert str(out) in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["twin", "gemma-3-270m"], "has no [llm.shape]"),
        (["twin", "llama-3.2-1b-instruct:Q9_X"], "no twin at Q9_X"),
        (["twin", "llama-3.2-1b-instruct", "--layers", "0"], "--layers"),
        (["twin", "whisper-tiny.en"], "not a language model"),
    ],
)
def test_twin_command_bad_input_is_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_twin_names_change_with_what_they_depend_on() -> None:
    model = load_catalog().llm("llama-3.2-1b-instruct")
    assert twin_name(model, "Q4_K_M", None) != twin_name(model, "Q4_0", None) != twin_name(model, "Q4_K_M", 2)
    with pytest.raises(UsageError, match=r"no \[llm.shape\]"):
        twin_name(load_catalog().llm("gemma-3-270m"), "Q4_K_M", None)


def _mapped(path: Path) -> bool:
    return str(path.resolve()) in Path("/proc/self/maps").read_text()


@pytest.mark.parametrize("room", ["fits", "does not fit"])
def test_weights_are_read_when_they_fit_and_mapped_when_they_do_not(
    room: str, small_twins: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repacked Q4_K_M model read into memory holds one copy of its weights; mapped, it would keep the file's
    pages resident beside the repacked ones. Mapping is for a file larger than the memory available."""
    import dataclasses

    import edge_assistant.llm.local as local
    from edge_assistant.hardware import detect

    twin = small_twins["llama3"]
    machine = detect()
    available = machine.available_ram if room == "fits" else twin.stat().st_size // 2
    monkeypatch.setattr(local, "detect", lambda: dataclasses.replace(machine, available_ram=available))
    with LlamaCppBackend(twin, family="llama3", threads=2, ctx_cap=256) as backend:
        assert _mapped(twin) == (room == "does not fit")
        reply = Reply()
        options = GenerationOptions(temperature=0.0, top_k=1, seed=0, max_tokens=4, stop=("\x00",))
        for _ in backend.stream([Message("user", "Hello?")], options, reply):
            pass
        assert reply.timings.completion_tokens >= 1
