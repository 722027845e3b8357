"""Choose the model to run and build its backend."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..catalog import LlmModel, hub_file, parse_spec
from ..errors import NotInstalledError, ResourceError, UsageError
from ..hardware import GIB, Machine
from ..recommend import OVERHEAD, memory_need
from ..settings import LlmSettings
from ..store import Installed, Store
from .backend import Backend

log = logging.getLogger(__name__)
EMBEDDED_DEFAULT = "smollm2-135m-instruct"


@dataclass(frozen=True)
class Choice:
    """A model file to load, and what the catalog knows of it."""

    path: Path
    label: str
    model: LlmModel | None
    need_bytes: int


def _choice(item: Installed, model: LlmModel | None) -> Choice:
    quant = model.quants.get(item.quant or "") if model else None
    need = memory_need(model, quant) if model and quant else int(item.bytes * 1.2) + OVERHEAD
    return Choice(item.path, item.ref, model, max(need, item.bytes + OVERHEAD))


def best_installed(store: Store, machine: Machine) -> Choice:
    """The highest-ranked installed instruct model that fits in memory; else the embedded default."""
    options = []
    for item in store.installed("llm"):
        model = store.catalog.llms.get(item.id)
        if model is not None and not model.instruct:
            continue
        choice = _choice(item, model)
        if choice.need_bytes <= machine.available_ram:
            options.append(((model.rank if model else 1, model.params_b if model else 0.0), choice))
    if options:
        return max(options, key=lambda o: o[0])[1]
    model = store.catalog.llm(EMBEDDED_DEFAULT)
    return _choice(store.require_llm(model), model)


def choose(store: Store, machine: Machine, spec: str | None) -> Choice:
    """Resolve -m: a GGUF path, OWNER/REPO/FILE.gguf, MODEL[:QUANT], or None for the best installed."""
    if spec is None:
        return best_installed(store, machine)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" and (path.exists() or spec.startswith((".", "/", "~"))):
        if not path.exists():
            raise NotInstalledError(f"model file not found: {path}")
        size = path.stat().st_size
        return Choice(path, path.name, None, int(size * 1.2) + OVERHEAD)
    raw = hub_file(spec)
    if raw:
        item = store.find("llm", raw.repo, raw.file)
        if item is None:
            raise NotInstalledError(f"{spec} is not installed; get it with: edge-assistant models pull {spec}")
        return _choice(item, None)
    name, quant = parse_spec(spec)
    model = store.catalog.llm(name)
    return _choice(store.require_llm(model, model.quant(quant) if quant else None), model)


def check_memory(choice: Choice, machine: Machine, force: bool) -> None:
    if choice.need_bytes > machine.available_ram and not force:
        raise ResourceError(
            f"{choice.label} needs about {choice.need_bytes / GIB:.1f} GiB of memory and "
            f"{machine.available_ram / GIB:.1f} GiB is available; pick a smaller model or pass --force"
        )


def make_backend(store: Store, machine: Machine, settings: LlmSettings, verbose: bool = False) -> Backend:
    """The backend the settings ask for (not yet opened)."""
    if settings.backend == "remote":
        if settings.offline:
            raise UsageError(
                "--backend remote sends prompts over the network, and offline mode is on (--offline, "
                "EDGE_ASSISTANT_OFFLINE or HF_HUB_OFFLINE); use the local backend"
            )
        if not settings.base_url:
            raise UsageError("--backend remote needs --base-url (e.g. http://desktop:8080/v1)")
        from .remote import RemoteBackend

        return RemoteBackend(settings.base_url, model=settings.model, api_key=settings.api_key)
    if settings.backend != "local":
        raise UsageError(f"unknown backend {settings.backend!r}; use local or remote")
    choice = choose(store, machine, settings.model)
    check_memory(choice, machine, settings.force)
    from .local import LlamaCppBackend

    log.info("model %s (%s)", choice.label, choice.path)
    return LlamaCppBackend(
        choice.path,
        name=choice.label,
        family=choice.model.family if choice.model else None,
        threads=settings.threads or machine.physical_cores,
        ctx_cap=settings.ctx_cap,
        sampling=choice.model.sampling if choice.model else None,
        verbose=verbose,
    )
