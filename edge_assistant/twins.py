"""Synthetic twins: a GGUF with a catalog model's real architecture, tensor names, shapes, vocabulary size and
quantization types, filled with random weights.

A twin reads as many bytes per token as the real model, so it runs at the same speed and takes the same
memory, without downloading the weights. ggml's `gguf` package writes an F16 file from the catalog's
`[llm.shape]`; llama.cpp's own quantizer (through llama-cpp-python) turns it into Q4_K_M, Q4_0, Q8_0, ...
with the same per-tensor type rules it applies to the real model. `layers` makes a small twin of the
same architecture for tests.

The vocabulary is the family's own where llama.cpp ships it as a vocab-only GGUF (Llama 3, Phi-3); for the
others a vocabulary of the same type is padded to the model's size and given the family's special tokens.
The GGUF carries the model's official chat template (tests/data/templates), as the real files do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .catalog import LlmModel, Shape
from .errors import BackendError, NotInstalledError, UsageError

log = logging.getLogger(__name__)
TWIN_VERSION = 1
"""Bump when the writer changes, so cached twins are rebuilt."""
LLAMA_CPP_VERSION = "0.3.36"
ARCHS = ("llama", "mistral3", "gemma2", "phi3")


@dataclass(frozen=True)
class VocabPlan:
    """Where a family's tokenizer comes from, and what to add to it."""

    file: str
    """Vocab-only GGUF in llama.cpp's models/ folder."""
    specials: tuple[str, ...] = ()
    """Control tokens appended (the family's turn markers) when the vocab is not the family's own."""
    bos: str | None = None
    eos: str | None = None
    own: bool = True
    """The family's own tokenizer (True) or a borrowed one of the same type, padded (False)."""


VOCABS: dict[str, VocabPlan] = {
    "llama3": VocabPlan("ggml-vocab-llama-bpe.gguf", eos="<|eot_id|>"),
    "phi3": VocabPlan("ggml-vocab-phi-3.gguf"),
    "gemma": VocabPlan(
        "ggml-vocab-llama-spm.gguf",
        ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
        bos="<bos>",
        eos="<eos>",
        own=False,
    ),
    "ministral3": VocabPlan(
        "ggml-vocab-llama-bpe.gguf",
        ("<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"),
        bos="<s>",
        eos="</s>",
        own=False,
    ),
    "chatml": VocabPlan("ggml-vocab-starcoder.gguf", own=False),
}
TEMPLATES = {
    "llama3": "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "phi3": "microsoft-Phi-3.5-mini-instruct.jinja",
    "gemma": "google-gemma-2-2b-it.jinja",
    "ministral3": "mistralai-Ministral-3-14B-Reasoning-2512.jinja",
}


@dataclass(frozen=True)
class TensorPlan:
    """One tensor: GGUF name, ggml dimensions (fastest first) and whether it stays F32 (norms, rope factors)."""

    name: str
    dims: tuple[int, ...]
    f32: bool = False
    fill: float | None = None
    """A constant value instead of random weights."""

    @property
    def elements(self) -> int:
        return math.prod(self.dims)


def _blk(i: int, name: str) -> str:
    return f"blk.{i}.{name}.weight"


def tensor_plan(arch: str, shape: Shape, layers: int) -> list[TensorPlan]:
    """The tensors llama.cpp loads for this architecture, in the order convert_hf_to_gguf.py writes them."""
    if arch not in ARCHS:
        raise UsageError(f"no twin layout for architecture {arch!r}; known: {', '.join(ARCHS)}")
    e, q, kv = shape.embd, shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    out: list[TensorPlan] = [TensorPlan("token_embd.weight", (e, shape.vocab))]
    if shape.rope_scaling == "llama3":
        out.append(TensorPlan("rope_freqs.weight", (shape.head_dim // 2,), f32=True))
    if shape.rope_scaling == "longrope":
        out.append(TensorPlan("rope_factors_long.weight", (shape.head_dim // 2,), f32=True, fill=1.0))
        out.append(TensorPlan("rope_factors_short.weight", (shape.head_dim // 2,), f32=True, fill=1.0))
    for i in range(layers):
        out.append(TensorPlan(_blk(i, "attn_norm"), (e,), f32=True, fill=1.0))
        if arch == "phi3":
            out.append(TensorPlan(_blk(i, "attn_qkv"), (e, q + 2 * kv)))
        else:
            out += [
                TensorPlan(_blk(i, "attn_q"), (e, q)),
                TensorPlan(_blk(i, "attn_k"), (e, kv)),
                TensorPlan(_blk(i, "attn_v"), (e, kv)),
            ]
        out.append(TensorPlan(_blk(i, "attn_output"), (q, e)))
        if arch == "gemma2":
            out.append(TensorPlan(_blk(i, "post_attention_norm"), (e,), f32=True, fill=1.0))
        out.append(TensorPlan(_blk(i, "ffn_norm"), (e,), f32=True, fill=1.0))
        if arch == "phi3":
            out.append(TensorPlan(_blk(i, "ffn_up"), (e, 2 * shape.ff)))
        else:
            out += [TensorPlan(_blk(i, "ffn_gate"), (e, shape.ff)), TensorPlan(_blk(i, "ffn_up"), (e, shape.ff))]
        out.append(TensorPlan(_blk(i, "ffn_down"), (shape.ff, e)))
        if arch == "gemma2":
            out.append(TensorPlan(_blk(i, "post_ffw_norm"), (e,), f32=True, fill=1.0))
    out.append(TensorPlan("output_norm.weight", (e,), f32=True, fill=1.0))
    if not shape.tied:
        out.append(TensorPlan("output.weight", (e, shape.vocab)))
    return out


def llama3_rope_freqs(shape: Shape) -> npt.NDArray[np.float32]:
    """Llama 3's rope frequency factors, as convert_hf_to_gguf.py computes them from rope_scaling."""
    x = shape.extra
    factor, low, high = x.get("_factor", 8.0), x.get("_low_freq_factor", 1.0), x.get("_high_freq_factor", 4.0)
    original = x.get("_original_context", 8192.0)
    freqs = 1.0 / (shape.rope_theta ** (np.arange(0, shape.head_dim, 2, dtype=np.float64) / shape.head_dim))
    wavelen = 2 * math.pi / freqs
    low_wavelen, high_wavelen = original / low, original / high
    smooth = (original / wavelen - low) / (high - low)
    factors = np.where(
        wavelen < high_wavelen,
        1.0,
        np.where(wavelen > low_wavelen, factor, 1.0 / ((1 - smooth) / factor + smooth)),
    )
    return factors.astype(np.float32)


def _metadata(model: LlmModel, shape: Shape, layers: int) -> dict[str, Any]:
    """Architecture keys under the GGUF's arch prefix (without it)."""
    keys: dict[str, Any] = {
        "context_length": model.context,
        "embedding_length": shape.embd,
        "block_count": layers,
        "feed_forward_length": shape.ff,
        "attention.head_count": shape.heads,
        "attention.head_count_kv": shape.kv_heads,
        "attention.key_length": shape.head_dim,
        "attention.value_length": shape.head_dim,
        "attention.layer_norm_rms_epsilon": shape.rms_eps,
        "rope.freq_base": shape.rope_theta,
        "rope.dimension_count": shape.head_dim,
        "vocab_size": shape.vocab,
    }
    if shape.rope_scaling == "yarn":
        keys["rope.scaling.type"] = "yarn"
    for key, value in shape.extra.items():
        if key.startswith("_"):
            continue
        integral = key.endswith(("sliding_window", "original_context_length"))
        keys[key] = int(value) if integral else float(value)
    return keys


# -- vocabulary -------------------------------------------------------------------------------------------


def sdist_path() -> Path:
    """The llama-cpp-python source archive that `make install` keeps (same rule as scripts/install_llama.py)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-assistant" / "sdist" / f"llama_cpp_python-{LLAMA_CPP_VERSION}.tar.gz"


def vocab_file(name: str, cache: Path) -> Path:
    """A vocab-only GGUF from llama.cpp's models/ folder, extracted once from the sdist into `cache`."""
    target = cache / "vocab" / name
    if target.is_file():
        return target
    sdist = sdist_path()
    if not sdist.is_file():
        raise NotInstalledError(f"the llama-cpp-python source archive is missing ({sdist}): run make install")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith(f"/models/{name}")), None)
        if member is None:
            raise NotInstalledError(f"{name} is not in {sdist.name}")
        source = tar.extractfile(member)
        assert source is not None
        tmp = target.with_suffix(".part")
        tmp.write_bytes(source.read())
        tmp.replace(target)
    return target


def _gguf_type(value: Any) -> Any:
    import gguf

    t = gguf.GGUFValueType
    if isinstance(value, bool):
        return t.BOOL
    if isinstance(value, int):
        return t.UINT32 if value >= 0 else t.INT32
    if isinstance(value, float):
        return t.FLOAT32
    return t.STRING


ARRAY_TYPES = {
    "tokenizer.ggml.tokens": "STRING",
    "tokenizer.ggml.merges": "STRING",
    "tokenizer.ggml.scores": "FLOAT32",
    "tokenizer.ggml.token_type": "INT32",
}


def _tokenizer_fields(plan: VocabPlan, vocab: int, cache: Path) -> dict[str, tuple[Any, Any, Any]]:
    """tokenizer.* keys: key -> (value, GGUFValueType, array item type or None)."""
    import gguf

    from .gguf import read_gguf

    meta = read_gguf(vocab_file(plan.file, cache), arrays=True).metadata
    raw = {k: v for k, v in meta.items() if k.startswith("tokenizer.") and k != "tokenizer.chat_template"}
    tokens: list[str] = list(raw["tokenizer.ggml.tokens"])
    types: list[int] = list(raw["tokenizer.ggml.token_type"])
    scores: list[float] | None = list(raw["tokenizer.ggml.scores"]) if "tokenizer.ggml.scores" in raw else None
    if len(tokens) > vocab:
        raise UsageError(f"{plan.file} has {len(tokens)} tokens, more than the model's {vocab}")
    fill = vocab - len(tokens) - len(plan.specials)
    if fill < 0:
        raise UsageError(f"no room for the special tokens in a vocabulary of {vocab}")
    tokens += [f"<twin_unused_{i}>" for i in range(fill)] + list(plan.specials)
    types += [int(gguf.TokenType.UNUSED)] * fill + [int(gguf.TokenType.CONTROL)] * len(plan.specials)
    raw["tokenizer.ggml.tokens"], raw["tokenizer.ggml.token_type"] = tokens, types
    if scores is not None:
        raw["tokenizer.ggml.scores"] = scores + [-1e9] * (fill + len(plan.specials))
    if plan.bos:
        raw["tokenizer.ggml.bos_token_id"] = tokens.index(plan.bos)
    if plan.eos:
        raw["tokenizer.ggml.eos_token_id"] = tokens.index(plan.eos)
    raw["tokenizer.ggml.add_bos_token"] = True
    raw.setdefault("tokenizer.ggml.add_eos_token", False)
    fields: dict[str, tuple[Any, Any, Any]] = {}
    for key, value in raw.items():
        if isinstance(value, list):
            item = ARRAY_TYPES.get(key)
            sub = getattr(gguf.GGUFValueType, item) if item else _gguf_type(value[0])
            fields[key] = (value, gguf.GGUFValueType.ARRAY, sub)
        else:
            fields[key] = (value, _gguf_type(value), None)
    return fields


def template_dir() -> Path:
    return Path(__file__).resolve().parent / "data" / "templates"


def chat_template(family: str) -> str | None:
    name = TEMPLATES.get(family)
    return (template_dir() / name).read_text(encoding="utf-8") if name else None


# -- writing ----------------------------------------------------------------------------------------------


def _random_pool(seed: int, size: int = 1 << 22) -> npt.NDArray[np.float16]:
    """Random weights (std 0.02, like a fresh initialisation) that tensors are cut from."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(size, dtype=np.float32) * 0.02).astype(np.float16)


def _data(plan: TensorPlan, shape: Shape, pool: npt.NDArray[np.float16], offset: int) -> npt.NDArray[Any]:
    numpy_shape = tuple(reversed(plan.dims))
    if plan.name == "rope_freqs.weight":
        return llama3_rope_freqs(shape)
    if plan.fill is not None:
        return np.full(numpy_shape, plan.fill, dtype=np.float32)
    n = plan.elements
    start = offset % pool.size
    reps = -(-(start + n) // pool.size)
    flat = np.tile(pool, reps)[start : start + n] if reps > 1 else pool[start : start + n]
    data = flat.reshape(numpy_shape)
    return data.astype(np.float32) if plan.f32 else data


def write_f16(
    model: LlmModel, path: Path, cache: Path, layers: int | None = None, seed: int = 0, vocab_only: bool = False
) -> None:
    """Write the twin unquantized: F16 matrices, F32 norms, the real metadata and tokenizer (only the
    metadata and tokenizer with `vocab_only`, for prompt-format tests)."""
    import gguf

    shape = require_shape(model)
    n_layers = layers or shape.layers
    plan = [] if vocab_only else tensor_plan(model.arch, shape, n_layers)
    vocab = VOCABS.get(model.family)
    if vocab is None:
        raise UsageError(f"no twin vocabulary for chat family {model.family!r}")
    writer = gguf.GGUFWriter(str(path), model.arch)
    writer.add_name(f"{model.name} (synthetic twin{f', {n_layers} layers' if layers else ''})")
    writer.add_description("edge-assistant synthetic twin: the real architecture with random weights")
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    for key, value in _metadata(model, shape, n_layers).items():
        full = f"{model.arch}.{key}"
        if isinstance(value, str):
            writer.add_string(full, value)
        elif isinstance(value, int):
            writer.add_uint32(full, value)
        else:
            writer.add_float32(full, value)
    for key, (value, vtype, sub) in _tokenizer_fields(vocab, shape.vocab, cache).items():
        writer.add_key_value(key, value, vtype, sub)
    template = chat_template(model.family)
    if template:
        writer.add_chat_template(template)
    writer.add_string("edge_assistant.twin.vocab", "own" if vocab.own else f"borrowed:{vocab.file}")
    for t in plan:
        dtype = np.float32 if t.f32 or t.fill is not None or t.name == "rope_freqs.weight" else np.float16
        nbytes = t.elements * np.dtype(dtype).itemsize
        writer.add_tensor_info(t.name, tuple(reversed(t.dims)), np.dtype(dtype), nbytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    pool = _random_pool(seed)
    offset = 0
    for t in plan:
        writer.write_tensor_data(_data(t, shape, pool, offset))
        offset += t.elements + 7919
    writer.close()


def quantize(source: Path, target: Path, quant: str, threads: int) -> None:
    """llama.cpp's quantizer, as llama-quantize runs it (no importance matrix)."""
    import llama_cpp

    from .llm.local import quiet_llama_log

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}", None)
    if ftype is None:
        raise UsageError(f"llama.cpp cannot quantize to {quant}")
    quiet_llama_log(False)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    rc = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), params)
    if rc != 0:
        raise BackendError(f"llama.cpp could not quantize {source.name} to {quant} (code {rc})")


def require_shape(model: LlmModel) -> Shape:
    if model.shape is None:
        raise UsageError(f"{model.id} has no [llm.shape] in the catalog: no twin can be made of it")
    return model.shape


def twin_key(model: LlmModel, quant: str, layers: int | None) -> str:
    """What a cached twin depends on: the writer's version, the model's shape and metadata, the quant, the layers."""
    shape = require_shape(model)
    blob = json.dumps(
        [TWIN_VERSION, model.arch, model.family, model.context, asdict(shape), quant.upper(), layers],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def twin_name(model: LlmModel, quant: str, layers: int | None) -> str:
    suffix = f"-{layers}L" if layers else ""
    return f"{model.id}-{quant.upper()}{suffix}-twin-{twin_key(model, quant, layers)}.gguf"


def build_twin(
    model: LlmModel, quant: str, target: Path, cache: Path, layers: int | None = None, threads: int = 2
) -> Path:
    """Write the twin of `model` at `quant` to `target` (F16 written to a temporary file, then quantized)."""
    require_shape(model)
    if layers is not None and layers < 1:
        raise UsageError("--layers must be at least 1")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".twin-") as tmp:
        f16 = Path(tmp) / "f16.gguf"
        log.info("writing the F16 twin of %s to %s", model.id, f16)
        write_f16(model, f16, cache, layers)
        if quant.upper() in ("F16", "F32"):
            f16.replace(target)
            return target
        part = Path(tmp) / "quant.gguf"
        quantize(f16, part, quant, threads)
        part.replace(target)
    return target


def ensure_twin(model: LlmModel, quant: str, cache: Path, layers: int | None = None, threads: int = 2) -> Path:
    """The cached twin, built on first use."""
    path = cache / twin_name(model, quant, layers)
    if path.is_file():
        return path
    return build_twin(model, quant, path, cache, layers, threads)


def cached_twins(cache: Path) -> Iterator[Path]:
    yield from sorted(cache.glob("*-twin-*.gguf"))
