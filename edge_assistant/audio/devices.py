"""Audio devices through PortAudio (sounddevice): listing them, finding one, the rates it takes."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import AudioError, UsageError

COMMON_RATES = (16000, 48000, 44100, 32000, 22050, 8000)


def load_sounddevice(error: type[AudioError] = AudioError, hint: str = "use --input FILE") -> Any:
    """The sounddevice module; `error` with `hint` when PortAudio or the package is missing."""
    try:
        return importlib.import_module("sounddevice")
    except OSError:  # the module loads libportaudio when imported
        raise error(f"the PortAudio library is not installed (apt install libportaudio2); {hint}") from None
    except ImportError:
        raise error(f"the sounddevice package is not installed; {hint}") from None


def find_device(spec: str | int | None, kind: str = "input") -> int | None:
    """A device index from an index or a name substring; None for the default device."""
    sd = load_sounddevice()
    channels = "max_input_channels" if kind == "input" else "max_output_channels"
    try:
        devices = list(sd.query_devices())
    except Exception as exc:  # PortAudio's own error type
        raise AudioError(f"cannot list audio devices: {exc}") from None
    usable = [(i, d) for i, d in enumerate(devices) if d[channels] > 0]
    if not usable:
        word = "microphone" if kind == "input" else "audio output device"
        hint = "use --input FILE or --input -" if kind == "input" else "use --speak-to FILE or --no-speak"
        raise AudioError(f"no {word} found; {hint}")
    if spec is None or spec == "default":
        return None
    if isinstance(spec, int) or str(spec).isdigit():
        index = int(spec)
        if any(i == index for i, _ in usable):
            return index
        raise UsageError(f"no {kind} device number {index}; see: edge-assistant devices")
    matches = [i for i, d in usable if str(spec).lower() in d["name"].lower()]
    if not matches:
        raise UsageError(f"no {kind} device matches '{spec}'; see: edge-assistant devices")
    return matches[0]


def supported_rates(device: int | None, kind: str = "input") -> list[int]:
    """Which common rates the device accepts for mono capture (or playback)."""
    sd = load_sounddevice()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    rates = []
    for rate in COMMON_RATES:
        try:
            check(device=device, channels=1, samplerate=rate, dtype="int16")
        except Exception:  # PortAudio raises its own error types for unsupported settings
            continue
        rates.append(rate)
    return rates


@dataclass(frozen=True)
class Device:
    """One PortAudio device."""

    index: int
    name: str
    inputs: int
    """Input channels (0: not a microphone)."""
    outputs: int
    default_rate: float
    default_input: bool
    default_output: bool
    input_rates: tuple[int, ...]
    """Common rates it takes for mono capture."""
    output_rates: tuple[int, ...]


def list_devices() -> list[Device]:
    """Every input and output device, the defaults marked, the common rates each takes."""
    sd = load_sounddevice(hint="use --input FILE for speech and --speak-to FILE for replies")
    try:
        found = list(sd.query_devices())
        default_in, default_out = sd.default.device
    except Exception as exc:  # PortAudio errors
        raise AudioError(f"cannot list audio devices: {exc}") from None
    return [
        Device(
            index=i,
            name=d["name"],
            inputs=d["max_input_channels"],
            outputs=d["max_output_channels"],
            default_rate=d["default_samplerate"],
            default_input=i == default_in,
            default_output=i == default_out,
            input_rates=tuple(supported_rates(i, "input")) if d["max_input_channels"] else (),
            output_rates=tuple(supported_rates(i, "output")) if d["max_output_channels"] else (),
        )
        for i, d in enumerate(found)
    ]
