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
class EndpointSettings:
    """When an utterance starts and ends (the energy endpointer)."""

    trailing_silence: float = 0.6
    """Seconds of silence that end an utterance."""
    max_utterance: float = 30.0
    """Seconds after which an utterance is cut even without silence (never-ending noise)."""
    min_speech: float = 0.12
    """Seconds of continuous sound before it counts as speech (ignores clicks)."""
    min_level: float = 300.0
    """RMS (of 32768) below which a frame is silence whatever the noise floor."""
    floor_ratio: float = 3.0
    """A frame is speech when its RMS exceeds the noise floor times this."""
    pause: float = 0.1
    """Seconds of silence after which a 'pause' boundary is reported (the utterance may be ending): a
    recognizer can start on the audio so far while the endpointer waits for the full trailing silence."""
    detector: str = "auto"
    """What tells voice from the rest: "energy" (loudness over an adaptive noise floor: no model, good on clean
    speech), "silero" (faster-whisper's voice detector, frame by frame: voice from steady noise), or "auto"
    (loudness while the room is quiet, Silero while steady noise fills even the gaps in speech)."""
    enter: float = 0.5
    """silero: a frame's voice probability above which speech starts ..."""
    stay: float = 0.35
    """... and above which it goes on."""


@dataclass(frozen=True)
class TurnSettings:
    """When a spoken turn to the assistant ends (modes/turntaking.py)."""

    complete_silence: float = 0.25
    """Seconds of silence that end a turn whose words read as a finished request; one whose words stop on a
    word that needs more ("Set a timer for") waits for the full trailing silence (VOICE_SILENCE)."""
    meant_silence: float = 0.5
    """Seconds of silence that end a turn whose words read as finished and that the language model reads as a
    finished request too (`Backend.ends_here`), though the recognizer left them without a closing mark."""
    pause: float = 0.03
    """Seconds of silence after which the recognizer starts on the words so far, in case the turn is ending
    (`EndpointSettings.pause`): one of the endpointer's frames, so the words are known ~70 ms sooner than after
    its default 0.1 s. The transcriptions this starts at pauses inside a sentence stop as soon as a later pause
    takes over, so they hold up the one at the real end by one encoder step at most."""


VOICE_SILENCE = 0.9
"""Trailing silence that ends any question to the assistant, finished-sounding or not: long enough for a
pause to think in the middle of a sentence."""


@dataclass(frozen=True)
class WindowSettings:
    """How a recording (a file, not a live source) is cut for transcription: long windows, each transcribed on
    its own, cut at a quiet moment."""

    length: float = 240.0
    """Seconds of audio per window: longer is faster (fewer partial 30 s passes of Whisper) but holds more
    audio in memory (16 kHz int16: 7.7 MB for 240 s)."""
    search: float = 20.0
    """The cut is the quietest tenth of a second in the last `search` seconds of a window."""


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
    offline: bool = False
    """Refuse the remote backend, the one part of a run mode that would use the network (--offline,
    EDGE_ASSISTANT_OFFLINE, HF_HUB_OFFLINE)."""


@dataclass(frozen=True)
class TemplateLimits:
    """Bounds on rendering a model's own chat template (it comes from a file anyone could have crafted)."""

    max_chars: int = 4 << 20
    """Characters a prompt may have (and any text or list built on the way); far beyond any context."""
    max_seconds: float = 2.0
    """Seconds one render may take; a real template takes milliseconds."""


@dataclass(frozen=True)
class ListenSettings:
    """Where speech comes from and how it is recognised."""

    input_spec: str | None = None
    """An audio or video file, "-" for raw 16 kHz s16le on stdin, or None for the microphone."""
    device: str | None = None
    """Microphone: index or name part; None for the default."""
    engine: str | None = None
    """vosk or whisper; None: by the model."""
    stt_model: str | None = None
    language: str | None = None
    """Spoken language (ISO code or name); None: English / auto."""
    silence: float = EndpointSettings.trailing_silence
    """Seconds of silence that end an utterance."""
    max_utterance: float = EndpointSettings.max_utterance
    """Seconds after which an utterance is cut."""
    voice_detector: str = EndpointSettings.detector
    """auto, energy or silero (`EndpointSettings.detector`)."""

    @property
    def input_path(self) -> Path | None:
        """The audio file read, if any (None for the microphone and for stdin)."""
        return Path(self.input_spec).expanduser() if self.input_spec not in (None, "-") else None

    @property
    def language_code(self) -> str | None:
        """The spoken language as an ISO code (UsageError for an unknown one)."""
        from .languages import language

        return language(self.language).code if self.language else None

    def endpoint(self) -> EndpointSettings:
        return EndpointSettings(
            trailing_silence=self.silence, max_utterance=self.max_utterance, detector=self.voice_detector
        )


@dataclass(frozen=True)
class SpeakSettings:
    """Where spoken answers go."""

    speak: bool | None = None
    """True: to a speaker (fail without one); False: nowhere; None: a speaker, else a WAV file."""
    speak_to: Path | None = None
    voice: str | None = None
    output_device: str | None = None


SYSTEM = "You are a helpful voice assistant. Give short, plain answers of one or two sentences."


@dataclass(frozen=True)
class AssistantSettings:
    """How the voice assistant takes turns."""

    system: str = SYSTEM
    """System prompt."""
    wake_word: str | None = None
    """Answer only what follows this phrase (hands-free); None: every utterance, or push-to-talk."""
    push_to_talk: bool = False
    """Listen only after Enter, for one utterance (a live microphone and a terminal, without a wake word)."""
    turns: int | None = None
    """Stop after this many answers; None: until the input ends."""
    log: Path | None = None
    """Append every turn to this JSONL file."""
    turn: TurnSettings = TurnSettings()
    """When a spoken turn ends."""
    echo_cancel: bool = False
    """The sound server removes the assistant's voice from the microphone (audio/echo.py): listen while it
    speaks, and let a person who talks over it stop it (barge-in by voice), instead of gating the microphone."""


WYOMING_ADDRESS = "tcp://127.0.0.1:10300"
"""Where `serve --wyoming` listens without an address (the port Home Assistant's speech services use)."""
OPENAI_ADDRESS = "127.0.0.1:8080"
"""Where `serve --openai` listens without an address (the port of llama.cpp's own server)."""


@dataclass(frozen=True)
class ServeSettings:
    """What `serve` listens on, and how much it accepts."""

    wyoming: str | None = None
    """tcp://HOST:PORT of the Wyoming server; None: no Wyoming server."""
    openai: str | None = None
    """HOST:PORT of the OpenAI-compatible HTTP API; None: no HTTP API."""
    api_key: str | None = None
    """Bearer key every HTTP request must carry; required when the HTTP API listens beyond loopback."""
    queue: int = 4
    """Requests that may wait for a busy model; one more is refused (HTTP 429, a Wyoming error)."""
    max_body_mb: float = 25.0
    """Largest HTTP request body (an uploaded recording), in MiB."""
    max_audio_seconds: float = 600.0
    """Longest audio one request may send to the recognizer."""
    max_text_chars: int = 4096
    """Longest text one request may ask to be spoken."""
    max_event_bytes: int = 1 << 20
    """Largest Wyoming event (JSON data or payload), in bytes."""
    grace: float = 30.0
    """Seconds requests in flight get to finish when the server is stopped."""
    idle: float = 30.0
    """Seconds a Wyoming client may send nothing in the middle of a request (holding a model) before it is dropped."""
    silence: float = 0.35
    """Seconds of silence that end an utterance inside a request: each is recognised as soon as it ends, so when
    the audio stops only the last (already started at its first short pause) is left."""
