"""Echo cancellation by the sound server: PulseAudio's (or PipeWire's) `module-echo-cancel` with WebRTC's canceller.

Loaded on request for the session, it offers a microphone from which the assistant's own voice, played through
its speaker, has been removed; what remains there while it speaks is somebody else talking (a barge-in). The
microphone and speaker of this process are pointed at it through libpulse's PULSE_SOURCE / PULSE_SINK, which
PortAudio's ALSA `pulse`/`default` devices follow when a stream opens.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import subprocess

from ..errors import AudioError, first_line

log = logging.getLogger(__name__)
SOURCE = "edge_assistant_ec_source"
SINK = "edge_assistant_ec_sink"
AEC_ARGS = "analog_gain_control=0 digital_gain_control=0 noise_suppression=1 high_pass_filter=1 extended_filter=1"
"""No gain control: it would raise the residual echo between words."""


class EchoCancel:
    """`module-echo-cancel` between the default (or given) microphone and speaker, for as long as it is open."""

    def __init__(self, source: str | None = None, sink: str | None = None) -> None:
        self.source = source
        """The microphone to clean (a PulseAudio source name); None: PULSE_SOURCE, else the server's default."""
        self.sink = sink
        self._module: str | None = None
        self._saved: dict[str, str | None] = {}

    def open(self) -> None:
        if self._module is not None:
            return
        if shutil.which("pactl") is None:
            raise AudioError("--echo-cancel needs PulseAudio or PipeWire's pactl (apt install pulseaudio-utils)")
        source = self.source or os.environ.get("PULSE_SOURCE") or self._pactl("get-default-source")
        sink = self.sink or os.environ.get("PULSE_SINK") or self._pactl("get-default-sink")
        self._module = self._pactl(
            "load-module",
            "module-echo-cancel",
            "aec_method=webrtc",
            f'aec_args="{AEC_ARGS}"',
            f"source_master={source}",
            f"sink_master={sink}",
            f"source_name={SOURCE}",
            f"sink_name={SINK}",
            "use_master_format=1",
        )
        for name, value in (("PULSE_SOURCE", SOURCE), ("PULSE_SINK", SINK)):
            self._saved[name] = os.environ.get(name)
            os.environ[name] = value
        log.info("echo cancellation on: %s (mic %s, speaker %s)", self._module, source, sink)

    def close(self) -> None:
        if self._module is None:
            return
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        try:
            self._pactl("unload-module", self._module)
        except AudioError as exc:
            log.warning("%s", exc)
        self._module = None

    def __enter__(self) -> EchoCancel:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _pactl(*args: str) -> str:
        try:
            done = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AudioError(f"echo cancellation: pactl {args[0]} failed: {exc}") from None
        if done.returncode != 0:
            why = first_line(Exception(done.stderr or done.stdout or f"exit {done.returncode}"))
            raise AudioError(f"echo cancellation needs a PulseAudio or PipeWire server: pactl {args[0]}: {why}")
        return done.stdout.strip()


def echo_cancel_status() -> tuple[bool, str]:
    """(whether --echo-cancel can work here, what was found)."""
    if shutil.which("pactl") is None:
        return False, "no pactl (PulseAudio or PipeWire's pulse layer)"
    try:
        info = EchoCancel._pactl("info")
    except AudioError as exc:
        return False, str(exc)
    server = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("Server Name")), "")
    if "PipeWire" in server:
        return True, f"{server}: module-echo-cancel"
    found = glob.glob("/usr/lib*/pulse-*/modules/module-echo-cancel.so") + glob.glob(
        "/usr/lib/*/pulse-*/modules/module-echo-cancel.so"
    )
    if not found:
        return False, f"{server or 'the sound server'} has no module-echo-cancel"
    return True, f"{server}: module-echo-cancel (WebRTC)"
