"""A private PulseAudio server with a virtual microphone and a virtual speaker, for tests and the voice bench on
machines without sound.

Usage::

    with VirtualAudio() as virtual:
        proc = subprocess.Popen([sys.executable, "-m", "edge_assistant", ...], env=virtual.env)
        virtual.play_into_mic(Path("speech.wav"))  # the program hears it from ALSA/PortAudio device "default"
        recording = virtual.record_speaker(tmp_path / "heard.wav")
        ...  # the program plays its answer to "default"
        heard = recording.stop()

The server has two null sinks (16 kHz, mono, s16le):

* ``vmic``: the virtual microphone. What :meth:`VirtualAudio.play_into_mic` plays into it is heard from its monitor
  source ``vmic.monitor``, the server's default source.
* ``vspeaker``: the virtual speaker, the server's default sink. What the program under test plays goes there;
  :meth:`VirtualAudio.record_speaker` records it from ``vspeaker.monitor``.

How a program reaches it: sounddevice -> PortAudio -> ALSA -> the ``pulse`` plugin of ``libasound2-plugins``. The
``pulseaudio`` package's ``/etc/alsa/conf.d/99-pulse.conf`` hook redirects ALSA's ``default`` PCM to PulseAudio
whenever a server answers at ``PULSE_SERVER``; ``libasound2-plugins`` also defines the PCM ``pulse``. So a process
whose environment has ``PULSE_SERVER`` pointing at this server sees the devices ``pulse`` and ``default`` (ALSA
host API, 32 in / 32 out), both reaching the default source and sink.

Important: PortAudio enumerates devices once, when sounddevice is imported (``Pa_Initialize``). A process that
imported sounddevice before the server was up, or without ``PULSE_SERVER`` in its environment (this applies to the
pytest process itself: :attr:`VirtualAudio.env` is never put into ``os.environ``), will not see these devices. Run
the program under test as a subprocess with ``env=virtual.env``.

PulseAudio runs as whatever user runs the tests; as root it only warns ("This program is not intended to be run as
root") and works, as long as it is started with ``-n`` and its own ``HOME``/``XDG_RUNTIME_DIR``. The null sinks
render in 2 s blocks while no stream asks for low latency, so each sink is kept busy by a ``pacat`` playing silence
with 20 ms latency, and the server is only handed out once that has taken effect.
"""

from __future__ import annotations

import ctypes.util
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

RATE = 16000
CHANNELS = 1
SAMPLE_FORMAT = "s16le"
MIC = "vmic"
SPEAKER = "vspeaker"
BINARIES = ("pulseaudio", "pactl", "pacat", "paplay", "parecord")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
# The null sink's first block is 2 s long (its latency before the keep-busy stream asked for 20 ms).
SETTLE_SECONDS = 2.2


class VirtualAudioError(RuntimeError):
    pass


def default_signals() -> None:
    """In a child before exec: SIGINT back to its default (a suite started from a background job ignores it, and so
    would its children: parecord would not stop on SIGINT and leave its WAV header unfinished)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> None:
    """Ask a process to end with `sig`, kill it if it does not within `timeout`, and reap it."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        except ProcessLookupError:
            pass
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


class Recording:
    """A running `parecord`; :meth:`stop` ends it cleanly (so the WAV header is complete) and returns the file."""

    def __init__(self, proc: subprocess.Popen[bytes], path: Path) -> None:
        self.proc = proc
        self.path = path

    def stop(self, timeout: float = STOP_TIMEOUT) -> Path:
        if self.proc.poll() is not None and self.proc.returncode != 0:
            stderr = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise VirtualAudioError(f"parecord failed ({self.proc.returncode}): {stderr.strip()}")
        _stop(self.proc, signal.SIGINT, timeout)
        return self.path


class VirtualAudio:
    """A private PulseAudio server (see the module docstring); a context manager, everything bounded by timeouts."""

    def __init__(self, rate: int = RATE, channels: int = CHANNELS) -> None:
        self.rate = rate
        self.channels = channels
        self.dir: Path | None = None
        self.socket: Path | None = None
        self.log: Path | None = None
        self.overrides: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self._server: subprocess.Popen[bytes] | None = None
        self._helpers: list[subprocess.Popen[bytes]] = []

    @staticmethod
    def available() -> str | None:
        """None if a virtual audio server can be started here, else why not (for `pytest.skip`)."""
        missing = [name for name in BINARIES if shutil.which(name) is None]
        if missing:
            return f"missing {', '.join(missing)} (apt-get install pulseaudio pulseaudio-utils)"
        plugin = "alsa-lib/libasound_module_pcm_pulse.so"
        if not any(glob.glob(f"{lib}/{plugin}") for lib in ("/usr/lib/*", "/usr/lib", "/usr/lib64", "/lib/*")):
            return "missing the ALSA pulse plugin (apt-get install libasound2-plugins)"
        if not os.path.exists("/usr/share/alsa/pulse-alsa.conf"):
            return "ALSA's default device is not routed to PulseAudio (/usr/share/alsa/pulse-alsa.conf is missing)"
        if ctypes.util.find_library("portaudio") is None:
            return "missing PortAudio (apt-get install libportaudio2)"
        return None

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def __enter__(self) -> VirtualAudio:
        reason = self.available()
        if reason is not None:
            raise VirtualAudioError(reason)
        # Not pytest's tmp_path: a unix socket path must stay under 108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="edge-pulse-"))
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in reversed(self._helpers):
            _stop(proc)
        self._helpers.clear()
        if self._server is not None:
            _stop(self._server)
            self._server = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _start(self) -> None:
        assert self.dir is not None
        home, runtime = self.dir / "home", self.dir / "run"
        home.mkdir()
        runtime.mkdir(mode=0o700)
        (runtime / "pulse").mkdir(mode=0o700)
        self.socket = runtime / "pulse" / "native"
        self.log = self.dir / "pulseaudio.log"
        server_env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PULSE_") and key not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY")
        }
        server_env.update(
            HOME=str(home),
            XDG_RUNTIME_DIR=str(runtime),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_STATE_HOME=str(home / ".state"),
        )
        spec = f"rate={self.rate} channels={self.channels} format={SAMPLE_FORMAT}"
        argv = [
            "pulseaudio",
            "-n",  # no default.pa: nothing but the modules below (no hardware, no suspend-on-idle)
            "--daemonize=no",
            "--use-pid-file=no",
            "--exit-idle-time=-1",
            "--realtime=no",
            "--high-priority=no",
            "--no-cpu-limit=yes",
            # Plain socket transfers: no shared memory to set up in containers, no memfd "bug 824" log noise.
            "--disable-shm=yes",
            "--log-target=stderr",
            "-L",
            f"module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
            "-L",
            f"module-null-sink sink_name={MIC} sink_properties=device.description=virtual-microphone {spec}",
            "-L",
            f"module-null-sink sink_name={SPEAKER} sink_properties=device.description=virtual-speaker {spec}",
        ]
        with self.log.open("wb") as log:
            self._server = subprocess.Popen(
                argv, env=server_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.overrides = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_SINK": SPEAKER,
            "PULSE_SOURCE": f"{MIC}.monitor",
            # Clients would otherwise write ~/.config/pulse/cookie into the real HOME.
            "PULSE_COOKIE": str(self.dir / "cookie"),
        }
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("PULSE_")}
        self.env.update(self.overrides)

        deadline = time.monotonic() + START_TIMEOUT
        while self._pactl("info", check=False).returncode != 0:
            if self._server.poll() is not None:
                raise VirtualAudioError(f"pulseaudio exited with {self._server.returncode}:\n{self.server_log()}")
            if time.monotonic() > deadline:
                raise VirtualAudioError(f"pulseaudio did not answer within {START_TIMEOUT} s:\n{self.server_log()}")
            time.sleep(0.1)
        self._pactl("set-default-sink", SPEAKER)
        self._pactl("set-default-source", f"{MIC}.monitor")
        for sink in (MIC, SPEAKER):
            self._helpers.append(
                subprocess.Popen(
                    [
                        "pacat",
                        "--playback",
                        f"--device={sink}",
                        "--latency-msec=20",
                        "--raw",
                        *self._format(),
                        "/dev/zero",
                    ],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(SETTLE_SECONDS)
        for proc in self._helpers:
            if proc.poll() is not None:
                raise VirtualAudioError(f"keep-busy pacat exited with {proc.returncode}:\n{self.server_log()}")

    # -- helpers -------------------------------------------------------------------------------------------------

    def _format(self) -> list[str]:
        return [f"--format={SAMPLE_FORMAT}", f"--rate={self.rate}", f"--channels={self.channels}"]

    def _pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                ["pactl", *args], env=self.env, capture_output=True, text=True, timeout=5, check=False
            )
        except subprocess.TimeoutExpired as error:
            if check:
                raise VirtualAudioError(f"pactl {' '.join(args)} timed out") from error
            return subprocess.CompletedProcess(error.cmd, 1, "", "timeout")
        if check and result.returncode != 0:
            raise VirtualAudioError(f"pactl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def pactl(self, *args: str) -> str:
        """Run `pactl` against this server and return its output."""
        return self._pactl(*args).stdout

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log is not None and self.log.exists() else ""

    def _require_running(self) -> None:
        if self._server is None or self._server.poll() is not None:
            raise VirtualAudioError(f"the PulseAudio server is not running:\n{self.server_log()}")

    # -- API -----------------------------------------------------------------------------------------------------

    def play_into_mic(
        self, wav: Path, wait: bool = True, timeout: float = 60.0, device: str = MIC
    ) -> subprocess.Popen[bytes]:
        """Play `wav` into the virtual microphone (or another of the sinks); with `wait`, until it has been played
        (real time)."""
        self._require_running()
        proc = subprocess.Popen(
            ["paplay", f"--device={device}", str(wav)],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=default_signals,
        )
        if not wait:
            self._helpers.append(proc)
            return proc
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise VirtualAudioError(f"paplay {wav} did not finish within {timeout} s") from None
        if proc.returncode != 0:
            raise VirtualAudioError(f"paplay {wav} failed ({proc.returncode}): {stderr.decode(errors='replace')}")
        return proc

    def loop_back(self, level: int = 50, latency_ms: int = 40) -> None:
        """What the speaker plays comes back into the microphone at `level` percent, as in a room."""
        self.pactl(
            "load-module", "module-loopback", f"source={SPEAKER}.monitor", f"sink={MIC}", f"latency_msec={latency_ms}"
        )
        for line in self.pactl("list", "short", "sink-inputs").splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[3] == "module-loopback.c":
                self.pactl("set-sink-input-volume", fields[0], f"{level}%")

    def record_speaker(self, out: Path) -> Recording:
        """Start recording what is played to the virtual speaker into `out` (WAV, 16 kHz mono s16)."""
        self._require_running()
        proc = subprocess.Popen(
            [
                "parecord",
                f"--device={SPEAKER}.monitor",
                "--latency-msec=20",
                "--file-format=wav",
                *self._format(),
                str(out),
            ],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=default_signals,
        )
        self._helpers.append(proc)
        return Recording(proc, out)
