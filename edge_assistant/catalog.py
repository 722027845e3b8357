"""The model catalog: known models as data (catalog.toml), loaded into typed records."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import tomllib

from .errors import UsageError
from .names import relative_path, repo_id

ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
REVISION_RE = re.compile(r"^[0-9a-f]{40}$")
FAMILIES = ("llama3", "gemma", "phi3", "chatml", "mistral", "ministral3")
QUANT_RE = re.compile(r"(?i)(?:^|[-_.])((?:I?Q\d+_[A-Z0-9_]+?)|Q\d+|F16|BF16|F32)(?=\.gguf$)")


@dataclass(frozen=True)
class Embedded:
    """A model shipped inside an installed Python package."""

    package: str
    path: str | None = None
    """File or folder inside the package."""
    assemble: bool = False
    """The package ships chunks that its `assemble(path)` joins into one file."""


@dataclass(frozen=True)
class Quant:
    """One quantization (one GGUF file) of an LLM."""

    name: str
    file: str
    bytes: int | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    embedded: Embedded | None = None
    unverified: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shape:
    """A model's architecture as llama.cpp sees it, from the publisher's config.json (enough to build a twin)."""

    layers: int
    embd: int
    """Hidden size."""
    ff: int
    """Feed-forward (intermediate) size."""
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    rope_theta: float
    rms_eps: float
    tied: bool
    """The output projection reuses the token embedding."""
    source: str
    rope_scaling: str = "none"
    """none, llama3, longrope or yarn."""
    extra: dict[str, float] = field(default_factory=dict)
    """Architecture-specific hyperparameters (sliding window, soft-capping, YaRN factors), by GGUF key suffix."""

    @property
    def params(self) -> int:
        """Parameters of the language model (weights only), from the shape."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        layer = self.embd * (q + 2 * kv) + q * self.embd + 3 * self.embd * self.ff
        return self.layers * layer + self.vocab * self.embd * (1 if self.tied else 2)


@dataclass(frozen=True)
class Sampling:
    """The publisher's recommended sampling; fields left None fall back to our defaults."""

    source: str
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None


@dataclass(frozen=True)
class LlmModel:
    """A chat model in the catalog."""

    id: str
    name: str
    family: str
    """Chat format family: llama3, gemma, phi3, chatml, mistral."""
    arch: str
    params_b: float
    """Parameters, in billions."""
    context: int
    """Trained context length, in tokens."""
    licence: str
    gated: bool
    repo: str | None
    revision: str | None
    default_quant: str
    quants: dict[str, Quant]
    rank: int = 0
    """Preference when several models fit a machine; higher is better."""
    tags: tuple[str, ...] = ()
    upstream: str | None = None
    unverified: tuple[str, ...] = ()
    shape: Shape | None = None
    sampling: Sampling | None = None

    kind = "llm"

    @property
    def instruct(self) -> bool:
        return "base" not in self.tags

    def quant(self, name: str | None = None) -> Quant:
        """The named quantization (case-insensitive), or the default one."""
        wanted = (name or self.default_quant).upper()
        for quant in self.quants.values():
            if quant.name.upper() == wanted:
                return quant
        choices = ", ".join(self.quants)
        raise UsageError(f"{self.id} has no quantization {name}; choose one of: {choices}")


@dataclass(frozen=True)
class AssetModel:
    """A speech-to-text model or a text-to-speech voice."""

    kind: str
    """'stt' or 'tts'."""
    id: str
    name: str
    engine: str
    """vosk, whisper, piper or espeak."""
    language: str
    licence: str = ""
    url: str | None = None
    """Archive URL (vosk zips)."""
    archive_root: str | None = None
    repo: str | None = None
    revision: str | None = None
    files: tuple[str, ...] = ()
    bytes: int | None = None
    sha256: str | None = None
    embedded: Embedded | None = None
    note: str = ""
    unverified: tuple[str, ...] = ()


CatalogEntry = LlmModel | AssetModel


@dataclass(frozen=True)
class HubFile:
    """A GGUF file named by repo id and path, outside the catalog."""

    repo: str
    file: str

    @property
    def id(self) -> str:
        return f"{self.repo}/{self.file}"

    @property
    def quant(self) -> str:
        match = QUANT_RE.search(self.file)
        return match.group(1).upper() if match else self.file


@dataclass(frozen=True)
class Catalog:
    """All known models, by id."""

    llms: dict[str, LlmModel]
    assets: dict[str, AssetModel] = field(default_factory=dict)

    def entries(self) -> list[CatalogEntry]:
        return [*self.llms.values(), *self.assets.values()]

    def get(self, model_id: str) -> CatalogEntry:
        """Look an id up in every table; unknown ids fail with the close names."""
        key = model_id.strip().lower()
        if key in self.llms:
            return self.llms[key]
        if key in self.assets:
            return self.assets[key]
        ids = [e.id for e in self.entries()]
        close = difflib.get_close_matches(key, ids, n=5, cutoff=0.5)
        close += [i for i in ids if key and key in i and i not in close][: 5 - len(close)]
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        raise UsageError(f"unknown model '{model_id}'{hint} (see: edge-assistant models list)")

    def llm(self, model_id: str) -> LlmModel:
        entry = self.get(model_id)
        if not isinstance(entry, LlmModel):
            raise UsageError(f"'{model_id}' is a {entry.kind} model, not a language model")
        return entry


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split 'MODEL[:QUANT]' into its parts."""
    name, _, quant = spec.strip().partition(":")
    if not name:
        raise UsageError("empty model name")
    return name, quant or None


def hub_file(spec: str) -> HubFile | None:
    """'owner/repo/path/file.gguf' names a file outside the catalog; anything else is None. A repo id that the hub
    would reject, or a path that would leave the repo's folder ('..', absolute, backslashes), is a UsageError."""
    parts = spec.strip().split("/")
    if len(parts) >= 3 and parts[-1].lower().endswith(".gguf"):
        return HubFile(repo=repo_id("/".join(parts[:2])), file=relative_path("/".join(parts[2:]), "path in repo"))
    return None


def _embedded(raw: dict[str, Any] | None) -> Embedded | None:
    return Embedded(**raw) if raw else None


def _quant(name: str, raw: dict[str, Any]) -> Quant:
    return Quant(
        name=name,
        file=raw["file"],
        bytes=raw.get("bytes"),
        sha256=raw.get("sha256"),
        sha256_prefix=raw.get("sha256_prefix"),
        embedded=_embedded(raw.get("embedded")),
        unverified=tuple(raw.get("unverified", ())),
    )


def _shape(raw: dict[str, Any] | None) -> Shape | None:
    if not raw:
        return None
    return Shape(
        layers=int(raw["layers"]),
        embd=int(raw["embd"]),
        ff=int(raw["ff"]),
        heads=int(raw["heads"]),
        kv_heads=int(raw["kv_heads"]),
        head_dim=int(raw["head_dim"]),
        vocab=int(raw["vocab"]),
        rope_theta=float(raw["rope_theta"]),
        rms_eps=float(raw["rms_eps"]),
        tied=bool(raw["tied"]),
        source=str(raw["source"]),
        rope_scaling=str(raw.get("rope_scaling", "none")),
        extra={k: float(v) for k, v in raw.get("extra", {}).items()},
    )


def _sampling(raw: dict[str, Any] | None) -> Sampling | None:
    if not raw:
        return None
    return Sampling(
        source=str(raw["source"]),
        temperature=raw.get("temperature"),
        top_p=raw.get("top_p"),
        top_k=raw.get("top_k"),
        min_p=raw.get("min_p"),
        repeat_penalty=raw.get("repeat_penalty"),
    )


def _llm(raw: dict[str, Any]) -> LlmModel:
    return LlmModel(
        id=raw["id"],
        name=raw["name"],
        family=raw["family"],
        arch=raw["arch"],
        params_b=float(raw["params_b"]),
        context=int(raw["context"]),
        licence=raw["licence"],
        gated=bool(raw.get("gated", False)),
        repo=raw.get("repo"),
        revision=raw.get("revision"),
        default_quant=raw.get("default_quant", "Q4_K_M"),
        quants={name: _quant(name, q) for name, q in raw["quants"].items()},
        rank=int(raw.get("rank", 0)),
        tags=tuple(raw.get("tags", ())),
        upstream=raw.get("upstream"),
        unverified=tuple(raw.get("unverified", ())),
        shape=_shape(raw.get("shape")),
        sampling=_sampling(raw.get("sampling")),
    )


def _asset(kind: str, raw: dict[str, Any]) -> AssetModel:
    known = {
        "id",
        "name",
        "engine",
        "language",
        "licence",
        "url",
        "archive_root",
        "repo",
        "revision",
        "bytes",
        "sha256",
        "note",
    }
    fields: dict[str, Any] = {k: v for k, v in raw.items() if k in known}
    return AssetModel(
        kind=kind,
        files=tuple(raw.get("files", ())),
        embedded=_embedded(raw.get("embedded")),
        unverified=tuple(raw.get("unverified", ())),
        **fields,
    )


def parse_catalog(data: dict[str, Any]) -> Catalog:
    """Build a Catalog from the parsed TOML document."""
    llms = {m.id: m for m in map(_llm, data.get("llm", []))}
    assets = {a.id: a for kind in ("stt", "tts") for a in (_asset(kind, r) for r in data.get(kind, []))}
    return Catalog(llms=llms, assets=assets)


def catalog_text() -> str:
    return files("edge_assistant").joinpath("catalog.toml").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    return tomllib.loads(catalog_text())


def load_catalog(extra: Path | None = None) -> Catalog:
    """The catalog shipped with the package, plus the user's own entries from `extra` (same schema).

    A user entry with the id of a shipped one replaces it.
    """
    data = _shipped()
    if extra is not None and extra.is_file():
        try:
            user = tomllib.loads(extra.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read the model catalog {extra}: {exc}") from None
        user.setdefault("schema", 1)
        problems = validate(user)
        if problems:
            raise UsageError(f"{extra}: {problems[0]}")
        data = {
            "schema": 1,
            **{
                kind: [e for e in data.get(kind, []) if e["id"] not in {u["id"] for u in user.get(kind, [])}]
                + user.get(kind, [])
                for kind in ("llm", "stt", "tts")
            },
        }
    return parse_catalog(data)


def validate(data: dict[str, Any]) -> list[str]:
    """Problems in a catalog document: schema, duplicate ids, sizes, hashes. Empty when valid."""
    problems: list[str] = []
    seen: set[str] = set()

    def check_common(where: str, raw: dict[str, Any], required: tuple[str, ...]) -> None:
        for key in required:
            if key not in raw:
                problems.append(f"{where}: missing '{key}'")
        model_id = str(raw.get("id", ""))
        if not ID_RE.match(model_id):
            problems.append(f"{where}: bad id {model_id!r}")
        if model_id in seen:
            problems.append(f"{where}: duplicate id {model_id!r}")
        seen.add(model_id)
        check_values(where, raw)

    def check_name(where: str, check: Callable[[str], str], value: Any) -> None:
        try:
            check(str(value))
        except UsageError as exc:
            problems.append(f"{where}: {exc}")

    def check_values(where: str, raw: dict[str, Any]) -> None:
        if "repo" in raw:
            check_name(where, repo_id, raw["repo"])
        if "file" in raw:
            check_name(where, relative_path, raw["file"])
        if "archive_root" in raw:
            check_name(where, lambda v: relative_path(v, "archive_root"), raw["archive_root"])
        for name in raw.get("files", []):
            check_name(where, relative_path, name)
        if "bytes" in raw and (not isinstance(raw["bytes"], int) or raw["bytes"] <= 0):
            problems.append(f"{where}: bytes must be a positive integer")
        if "sha256" in raw and not SHA256_RE.match(str(raw["sha256"])):
            problems.append(f"{where}: sha256 must be 64 lowercase hex digits")
        if "revision" in raw and not REVISION_RE.match(str(raw["revision"])):
            problems.append(f"{where}: revision must be a 40-hex commit")
        if "sha256_prefix" in raw and not re.match(r"^[0-9a-f]{6,63}$", str(raw["sha256_prefix"])):
            problems.append(f"{where}: bad sha256_prefix")
        for name in raw.get("unverified", []):
            if name not in raw and name not in ("file", "gated"):
                problems.append(f"{where}: unverified names a field it lacks: {name}")

    if data.get("schema") != 1:
        problems.append("schema must be 1")
    for raw in data.get("llm", []):
        where = f"llm {raw.get('id', '?')}"
        check_common(where, raw, ("id", "name", "family", "arch", "params_b", "context", "licence", "quants"))
        if raw.get("family") not in FAMILIES:
            problems.append(f"{where}: family must be one of {', '.join(FAMILIES)}")
        quants = raw.get("quants", {})
        if raw.get("default_quant", "Q4_K_M") not in quants:
            problems.append(f"{where}: default_quant is not among its quants")
        if not raw.get("repo") and not all(q.get("embedded") for q in quants.values()):
            problems.append(f"{where}: no repo to download from")
        problems += _check_shape(where, raw.get("shape"))
        problems += _check_sampling(where, raw.get("sampling"))
        for qname, q in quants.items():
            if "file" not in q:
                problems.append(f"{where} {qname}: missing 'file'")
            check_values(f"{where} {qname}", q)
    for kind in ("stt", "tts"):
        for raw in data.get(kind, []):
            where = f"{kind} {raw.get('id', '?')}"
            check_common(where, raw, ("id", "name", "engine", "language"))
            if raw.get("engine") not in ("vosk", "whisper", "piper", "espeak"):
                problems.append(f"{where}: unknown engine {raw.get('engine')!r}")
            if raw.get("engine") != "espeak" and not (raw.get("url") or (raw.get("repo") and raw.get("files"))):
                problems.append(f"{where}: needs a url, or a repo and files")
    return problems


SHAPE_KEYS = (
    "layers",
    "embd",
    "ff",
    "heads",
    "kv_heads",
    "head_dim",
    "vocab",
    "rope_theta",
    "rms_eps",
    "tied",
    "source",
)
ROPE_SCALINGS = ("none", "llama3", "longrope", "yarn")
SAMPLING_KEYS = {"source", "temperature", "top_p", "top_k", "min_p", "repeat_penalty"}


def _check_shape(where: str, raw: dict[str, Any] | None) -> list[str]:
    if raw is None:
        return []
    problems = [f"{where} shape: missing '{k}'" for k in SHAPE_KEYS if k not in raw]
    for key in ("layers", "embd", "ff", "heads", "kv_heads", "head_dim", "vocab"):
        if key in raw and (not isinstance(raw[key], int) or raw[key] <= 0):
            problems.append(f"{where} shape: {key} must be a positive integer")
    if raw.get("rope_scaling", "none") not in ROPE_SCALINGS:
        problems.append(f"{where} shape: rope_scaling must be one of {', '.join(ROPE_SCALINGS)}")
    heads, kv_heads = raw.get("heads"), raw.get("kv_heads")
    if isinstance(heads, int) and isinstance(kv_heads, int) and kv_heads > 0 and heads % kv_heads:
        problems.append(f"{where} shape: heads must be a multiple of kv_heads")
    return problems


def _check_sampling(where: str, raw: dict[str, Any] | None) -> list[str]:
    if raw is None:
        return []
    problems = [f"{where} sampling: unknown key '{k}'" for k in raw if k not in SAMPLING_KEYS]
    if "source" not in raw:
        problems.append(f"{where} sampling: missing 'source'")
    for key in ("temperature", "top_p", "min_p", "repeat_penalty"):
        if key in raw and (not isinstance(raw[key], (int, float)) or raw[key] < 0):
            problems.append(f"{where} sampling: {key} must be a non-negative number")
    if "top_k" in raw and (not isinstance(raw["top_k"], int) or raw["top_k"] < 0):
        problems.append(f"{where} sampling: top_k must be a non-negative integer")
    return problems
