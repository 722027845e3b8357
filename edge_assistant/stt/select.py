"""Choose the speech recognizer: by --stt-model, by --engine, or the best installed for the language."""

from __future__ import annotations

from pathlib import Path

from ..catalog import AssetModel
from ..errors import NotInstalledError, UsageError
from ..settings import EndpointSettings
from ..store import Installed, Store
from .recognizer import Recognizer

ENGINES = ("vosk", "whisper")


def _entry(store: Store, item: Installed) -> AssetModel | None:
    entry = store.catalog.assets.get(item.id)
    return entry if entry and entry.kind == "stt" else None


def _engine_of(path: Path) -> str:
    if (path / "model.bin").exists():
        return "whisper"
    if (path / "am" / "final.mdl").exists() or (path / "final.mdl").exists():
        return "vosk"
    raise UsageError(f"{path} is neither a vosk nor a faster-whisper model folder")


def _score(entry: AssetModel, language: str | None) -> int:
    """Higher is better for this language."""
    if language is None:
        return 3 if entry.language == "en" and entry.engine == "whisper" else 1 if entry.language == "en" else 0
    if entry.language == language:
        return 3 if entry.engine == "whisper" else 2
    if entry.language == "multi" and entry.engine == "whisper":
        return 1
    return -1


def choose_stt(
    store: Store, engine: str | None = None, model: str | None = None, language: str | None = None
) -> tuple[Path, str, str]:
    """(model folder, engine, name) for the options given."""
    if engine and engine not in ENGINES:
        raise UsageError(f"unknown speech engine {engine!r}; use vosk or whisper")
    if model:
        path = Path(model).expanduser()
        if path.is_dir():
            return path, engine or _engine_of(path), path.name
        named = store.catalog.get(model)
        if not isinstance(named, AssetModel) or named.kind != "stt":
            raise UsageError(f"{model} is not a speech-to-text model (see: edge-assistant models list --kind stt)")
        found = store.find("stt", named.id)
        if found is None:
            raise NotInstalledError(f"{named.id} is not installed; get it with: edge-assistant models pull {named.id}")
        if engine and named.engine != engine:
            raise UsageError(f"{named.id} is a {named.engine} model, not {engine}")
        return found.path, named.engine, named.id
    ranked = []
    for item in store.installed("stt"):
        entry = _entry(store, item)
        if entry is None or (engine and entry.engine != engine):
            continue
        score = _score(entry, language)
        if score >= 0:
            ranked.append((score, item, entry))
    if not ranked:
        what = f"{engine} " if engine else ""
        lang = f" for language '{language}'" if language else ""
        hint = f"vosk-small-{language}" if language and engine != "whisper" else "whisper-tiny.en"
        raise NotInstalledError(
            f"no {what}speech model installed{lang}; see 'edge-assistant models list --kind stt' "
            f"(e.g. edge-assistant models pull {hint}...)"
        )
    _, item, entry = max(ranked, key=lambda r: r[0])
    return item.path, entry.engine, entry.id


def make_recognizer(
    store: Store,
    engine: str | None = None,
    model: str | None = None,
    language: str | None = None,
    endpoint: EndpointSettings | None = None,
    threads: int = 0,
    grammar: list[str] | None = None,
    fast: bool = False,
) -> Recognizer:
    """The recognizer the options ask for (not yet opened). `fast`: least delay after speech (conversation)
    rather than word timings and beam search (notes)."""
    path, kind, name = choose_stt(store, engine, model, language)
    if kind == "vosk":
        from .vosk import VoskRecognizer

        lang = store.catalog.assets[name].language if name in store.catalog.assets else language
        return VoskRecognizer(path, name=name, grammar=grammar, endpoint=endpoint, language=lang)
    if grammar:
        raise UsageError("a grammar or wake word needs the vosk engine (--engine vosk)")
    from .whisper import WhisperRecognizer

    return WhisperRecognizer(
        path,
        name=name,
        language=language,
        threads=threads,
        endpoint=endpoint,
        beam_size=1 if fast else 5,
        word_timestamps=not fast,
        short_window=fast,
    )
