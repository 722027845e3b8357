"""Settings as frozen dataclasses, one per subsystem, built from the environment in one place.

Environment variables: EDGE_ASSISTANT_HOME (data home), EDGE_ASSISTANT_MODELS (models dir),
HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE / EDGE_ASSISTANT_OFFLINE (no network at all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP = "edge-assistant"
DEFAULT_ENDPOINT = "https://huggingface.co"
TRUE = {"1", "true", "yes", "on"}


def _checkout_models_dir() -> Path | None:
    """`models/` of the source checkout this package runs from, if any."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "models").is_dir():
        return root / "models"
    return None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE


@dataclass(frozen=True)
class Paths:
    """Where data lives."""

    home: Path
    """Data home: config, logs, caches."""
    models: Path
    """Models dir: downloaded and registered models."""

    @property
    def catalog_file(self) -> Path:
        """The user's own catalog entries (same schema as the shipped catalog.toml)."""
        return self.home / "catalog.toml"

    @classmethod
    def from_env(cls) -> Paths:
        env_home = os.environ.get("EDGE_ASSISTANT_HOME")
        if env_home:
            home = Path(env_home).expanduser()
        else:
            from platformdirs import user_data_path

            home = user_data_path(APP, appauthor=False)
        env_models = os.environ.get("EDGE_ASSISTANT_MODELS")
        if env_models:
            models = Path(env_models).expanduser()
        elif env_home:
            models = home / "models"
        else:
            models = _checkout_models_dir() or home / "models"
        return cls(home=home, models=models)


@dataclass(frozen=True)
class HubSettings:
    """How to reach the model hub."""

    endpoint: str
    """Base URL of the hub or a mirror (HF_ENDPOINT)."""
    token: str | None
    """Access token for gated repos (--token, HF_TOKEN)."""
    offline: bool
    """Never open a socket (--offline, HF_HUB_OFFLINE, EDGE_ASSISTANT_OFFLINE)."""

    @classmethod
    def from_env(cls, token: str | None = None, offline: bool = False) -> HubSettings:
        return cls(
            endpoint=(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
            token=token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None,
            offline=offline or _flag("HF_HUB_OFFLINE") or _flag("EDGE_ASSISTANT_OFFLINE"),
        )


@dataclass(frozen=True)
class LlmSettings:
    """Which language model to run, and how."""

    model: str | None = None
    """MODEL[:QUANT], OWNER/REPO/FILE.gguf or a path; None: the best installed for this machine."""
    backend: str = "local"
    """local (llama.cpp in this process) or remote (an OpenAI-compatible server)."""
    base_url: str | None = None
    api_key: str | None = None
    threads: int | None = None
    """None: the physical cores."""
    ctx_cap: int = 4096
    """Upper bound on the context, in tokens (memory grows with it)."""
    force: bool = False
    """Load a model even when it does not fit in memory."""


@dataclass(frozen=True)
class ListenSettings:
    """Where speech comes from and how it is recognised."""

    input_spec: str | None = None
    """A WAV/FLAC file, '-' for raw 16 kHz s16le on stdin, or None for the microphone."""
    device: str | None = None
    """Microphone: index or name part; None for the default."""
    engine: str | None = None
    """vosk or whisper; None: by the model."""
    stt_model: str | None = None
    language: str | None = None
    """Spoken language (ISO code or name); None: English / auto."""
    silence: float = 0.6
    """Seconds of silence that end an utterance."""
    max_utterance: float = 30.0
    """Seconds after which an utterance is cut."""


@dataclass(frozen=True)
class SpeakSettings:
    """Where spoken answers go."""

    speak: bool | None = None
    """True: to a speaker (fail without one); False: nowhere; None: a speaker, else a WAV file."""
    speak_to: Path | None = None
    voice: str | None = None
    output_device: str | None = None
