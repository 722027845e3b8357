"""Downloads against a local server that speaks the hub's protocol, with the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import io
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_assistant.download import PullOptions, pull_llm
from edge_assistant.errors import DiskSpaceError
from edge_assistant.settings import HubSettings, Paths
from edge_assistant.store import Store
from tests.fakehub import FakeHub
from tests.ggufmaker import make_gguf
from tests.helpers import run, spawn

MIB = 1024 * 1024
REPO, FILE = "someone/Tiny-GGUF", "tiny-Q4_K_M.gguf"
SPEC = f"{REPO}/{FILE}"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


@pytest.fixture(scope="module")
def big() -> bytes:
    """A 24 MiB GGUF: larger than huggingface_hub's 10 MiB write chunks, so a cut leaves bytes to resume."""
    return make_gguf(24 * MIB)


def models_dir() -> Path:
    return Paths.from_env().models


def body_gets(hub: FakeHub) -> list[str]:
    return [r["path"] for r in hub.requests if r["method"] == "GET" and r["path"].startswith("/cdn/")]


def write_user_catalog(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "catalog.toml").write_text(text)


def spawn_pull(spec: str, *extra: str) -> subprocess.Popen[str]:
    return spawn("models", "pull", spec, *extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def partial_size() -> int:
    return sum(p.stat().st_size for p in (models_dir() / ".partial").glob("*.part"))


def test_full_pull_of_a_repo_file(hub: FakeHub, big: bytes) -> None:
    hub.add_file(REPO, FILE, big)
    code, out, err = run("models", "pull", SPEC, "--quiet")
    assert code == 0, err
    path = Path(out.strip())
    assert path == models_dir() / "hub" / REPO / FILE
    assert path.read_bytes() == big
    assert not list((models_dir() / ".partial").glob("*.part"))
    code, out, _ = run("models", "verify", SPEC)
    assert code == 0 and out.startswith("OK")
    # a second pull is a no-op that touches no bytes
    gets = len(body_gets(hub))
    code, _, err = run("models", "pull", SPEC)
    assert code == 0 and "already installed" in err
    assert len(body_gets(hub)) == gets


def test_catalog_pull_checks_catalog_sha_and_size(hub: FakeHub, big: bytes, hermetic: Path) -> None:
    digest = hashlib.sha256(big).hexdigest()
    hub.add_file("org/Cat-GGUF", "cat-Q4_K_M.gguf", big)
    write_user_catalog(
        hermetic,
        f"""
[[llm]]
id = "cat-1b"
name = "Cat 1B"
family = "chatml"
arch = "llama"
params_b = 0.1
context = 2048
licence = "MIT"
repo = "org/Cat-GGUF"
[llm.quants.Q4_K_M]
file = "cat-Q4_K_M.gguf"
bytes = {len(big)}
sha256 = "{digest}"
[llm.quants.Q8_0]
file = "cat-Q4_K_M.gguf"
bytes = {len(big) + 1}
""",
    )
    code, _, err = run("models", "pull", "cat-1b:Q8_0", "-q")
    assert code == 1 and f"the hub serves {len(big)} bytes but the catalog expects {len(big) + 1}" in err
    code, out, err = run("models", "pull", "cat-1b", "-q")
    assert code == 0, err
    assert Path(out.strip()) == models_dir() / "llm" / "cat-1b" / "cat-Q4_K_M.gguf"
    code, out, _ = run("models", "list", "--installed", "--json")
    assert "cat-1b" in out


def test_cut_connection_is_resumed_within_the_pull(hub: FakeHub, big: bytes) -> None:
    hub.add_file(REPO, FILE, big)
    hub.cut_after(15 * MIB)
    code, out, err = run("models", "pull", SPEC, "-q")
    assert code == 0, err
    assert Path(out.strip()).read_bytes() == big
    assert hub.ranges() == [f"bytes={15 * MIB}-"], "the resumed request starts where the cut left off"


@pytest.mark.parametrize("how", ["kill", "interrupt"])
def test_interrupted_pull_resumes_next_time(hub: FakeHub, big: bytes, how: str) -> None:
    hub.add_file(REPO, FILE, big)
    release = hub.stall_after(12 * MIB)
    proc = spawn_pull(SPEC, "-q")
    try:
        assert hub.wait_for_stall(20)
        wait_for(lambda: partial_size() >= 10 * MIB)
        proc.send_signal(signal.SIGKILL if how == "kill" else signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        release.set()
        proc.kill()
    if how == "interrupt":
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    final = models_dir() / "hub" / REPO / FILE
    assert not final.exists(), "a partial file must never sit under the final name"
    kept = partial_size()
    assert kept >= 10 * MIB
    code, _out, err = run("models", "pull", SPEC, "-q")
    assert code == 0, err
    assert "resuming" in err
    assert hub.ranges()[-1] == f"bytes={kept}-"
    assert final.read_bytes() == big


def test_corrupt_bytes_are_rejected_and_discarded(hub: FakeHub, big: bytes) -> None:
    hub.add_file(REPO, FILE, big)
    hub.corrupt(REPO, FILE)
    code, out, err = run("models", "pull", SPEC, "-q")
    assert code == 1 and out == ""
    assert "checksum mismatch" in err and "discarded" in err
    assert not (models_dir() / "hub" / REPO / FILE).exists()
    assert partial_size() == 0
    code, out, _ = run("models", "list", "--installed", "--json")
    assert REPO not in out


def test_a_file_that_is_not_gguf_is_discarded(hub: FakeHub) -> None:
    hub.add_file(REPO, FILE, b"<html>not a model</html>" * 1000)
    code, _, err = run("models", "pull", SPEC, "-q")
    assert code == 1 and "not a usable GGUF" in err
    assert not (models_dir() / "hub" / REPO / FILE).exists()


def test_gated_repo(hub: FakeHub, big: bytes) -> None:
    hub.add_file(REPO, FILE, big, gated=True)
    code, out, err = run("models", "pull", SPEC, "-q")
    assert code == 1 and out == ""
    assert err.strip() == (
        f"error: this repo is gated: accept the licence at {hub.url}/{REPO} and pass a token with --token or HF_TOKEN"
    )
    code, _, err = run("models", "pull", SPEC, "-q", "--token", "hf_wrong")
    assert code == 1 and "the token given has no access" in err
    code, out, err = run("models", "pull", SPEC, "-q", "--token", "hf_valid")
    assert code == 0, err
    assert Path(out.strip()).read_bytes() == big


def test_gated_token_from_env(hub: FakeHub, big: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.add_file(REPO, FILE, big, gated=True)
    monkeypatch.setenv("HF_TOKEN", "hf_valid")
    code, _, err = run("models", "pull", SPEC, "-q")
    assert code == 0, err


def test_unknown_repo_and_file(hub: FakeHub, big: bytes) -> None:
    hub.add_file(REPO, FILE, big)
    code, _, err = run("models", "pull", "nobody/Nothing-GGUF/x.gguf", "-q")
    assert code == 1 and "repository nobody/Nothing-GGUF not found" in err
    code, _, err = run("models", "pull", f"{REPO}/missing.gguf", "-q")
    assert code == 1 and "missing.gguf is not in someone/Tiny-GGUF" in err


def test_unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    code, _, err = run("models", "pull", SPEC, "-q")
    assert code == 1 and f"cannot reach http://127.0.0.1:{port}" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("how", ["env", "flag"])
def test_offline_mode_opens_no_socket(hub: FakeHub, big: bytes, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    hub.add_file(REPO, FILE, big)
    opened: list[object] = []
    real_connect = socket.socket.connect

    def guard(self: socket.socket, address: object) -> None:
        opened.append(address)
        real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guard)
    args = ["models", "pull", SPEC, "-q"]
    if how == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        args.append("--offline")
    code, _, err = run(*args)
    assert code == 1
    assert "offline mode is on" in err and f"models pull {SPEC}" in err
    assert opened == [] and hub.requests == []


def test_disk_space_is_checked_before_downloading(hub: FakeHub, big: bytes, tmp_path: Path) -> None:
    hub.add_file(REPO, FILE, big)
    from edge_assistant.catalog import HubFile

    store = Store(tmp_path / "models")
    opts = PullOptions(hub=HubSettings.from_env(), notify=lambda _: None, free_bytes=lambda _: 5 * MIB)
    with pytest.raises(DiskSpaceError, match=r"not enough disk space .*need 92\.3 MB, 5\.2 MB free"):
        pull_llm(store, HubFile(REPO, FILE), None, opts)
    assert body_gets(hub) == []
    assert not (store.root / "hub").exists()


def test_concurrent_pulls_of_the_same_file(hub: FakeHub, big: bytes) -> None:
    hub.add_file(REPO, FILE, big)
    hub.throttle(12 * MIB)
    procs = [spawn_pull(SPEC, "-q") for _ in range(2)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    final = models_dir() / "hub" / REPO / FILE
    assert final.read_bytes() == big
    assert results[0][0] == results[1][0] == f"{final}\n"
    assert len(body_gets(hub)) == 1, "the second pull waits for the first instead of downloading again"
    assert any("waiting for another pull" in err or "installed by another pull" in err for _, err in results)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


VOSK_ENTRY = """
[[stt]]
id = "vosk-test"
name = "Vosk test"
engine = "vosk"
language = "en"
url = "{url}"
archive_root = "vosk-model-test"
"""


def test_vosk_archive_is_unpacked_and_recorded(hub: FakeHub, hermetic: Path) -> None:
    data = _zip(
        {
            "vosk-model-test/am/final.mdl": b"am",
            "vosk-model-test/conf/model.conf": b"c",
            "vosk-model-test/graph/HCLr.fst": b"g" * 1000,
        }
    )
    write_user_catalog(hermetic, VOSK_ENTRY.format(url=hub.add_blob("vosk/vosk-model-test.zip", data)))
    code, out, err = run("models", "pull", "vosk-test", "-q")
    assert code == 0, err
    target = Path(out.strip())
    assert target == models_dir() / "stt" / "vosk-test"
    assert (target / "am" / "final.mdl").read_bytes() == b"am"
    assert all("authorization" not in r["headers"] for r in hub.requests)
    code, out, _ = run("models", "verify", "vosk-test")
    assert code == 0 and "3 files match" in out
    (target / "conf" / "model.conf").write_bytes(b"changed")
    code, out, _ = run("models", "verify", "vosk-test")
    assert code == 2 and "conf/model.conf has changed" in out


@pytest.mark.parametrize("evil", ["../escape.txt", "vosk-model-test/../../escape.txt", "/abs/escape.txt"])
def test_zip_with_path_traversal_is_rejected(hub: FakeHub, hermetic: Path, tmp_path: Path, evil: str) -> None:
    data = _zip({"vosk-model-test/am/final.mdl": b"am", evil: b"gotcha"})
    write_user_catalog(hermetic, VOSK_ENTRY.format(url=hub.add_blob("vosk/evil.zip", data)))
    code, _, err = run("models", "pull", "vosk-test", "-q")
    assert code == 1 and "unsafe path in archive" in err
    assert not (models_dir() / "stt" / "vosk-test").exists()
    assert not list(tmp_path.rglob("escape.txt"))


def test_archive_that_is_not_a_vosk_model(hub: FakeHub, hermetic: Path) -> None:
    data = _zip({"vosk-model-test/README": b"hello"})
    write_user_catalog(hermetic, VOSK_ENTRY.format(url=hub.add_blob("vosk/x.zip", data)))
    code, _, err = run("models", "pull", "vosk-test", "-q")
    assert code == 1 and "not a vosk model" in err
    assert not (models_dir() / "stt" / "vosk-test").exists()


def test_whisper_model_files_from_a_repo(hub: FakeHub, hermetic: Path) -> None:
    files = {"config.json": b"{}", "model.bin": b"m" * 50000, "tokenizer.json": b"{}", "vocabulary.txt": b"a\nb"}
    for name, data in files.items():
        hub.add_file("Org/faster-whisper-test", name, data, lfs=name == "model.bin")
    write_user_catalog(
        hermetic,
        """
[[stt]]
id = "whisper-test"
name = "Whisper test"
engine = "whisper"
language = "en"
repo = "Org/faster-whisper-test"
files = ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
""",
    )
    code, out, err = run("models", "pull", "whisper-test", "-q")
    assert code == 0, err
    target = Path(out.strip())
    assert {p.name: p.read_bytes() for p in target.iterdir()} == files


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 16 MiB tmpfs as the models dir (needs root and mount rights; skipped otherwise)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    monkeypatch.setenv("EDGE_ASSISTANT_MODELS", str(mnt))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_refused_before_download(hub: FakeHub, big: bytes, small_disk: Path) -> None:
    hub.add_file(REPO, FILE, big)
    code, _, err = run("models", "pull", SPEC, "-q")
    assert code == 1 and "not enough disk space" in err
    assert body_gets(hub) == []


def test_disk_filling_up_mid_download(hub: FakeHub, big: bytes, small_disk: Path) -> None:
    from edge_assistant.catalog import HubFile

    hub.add_file(REPO, FILE, big)
    store = Store(small_disk)
    opts = PullOptions(hub=HubSettings.from_env(), notify=lambda _: None, free_bytes=lambda _: 1 << 40)
    with pytest.raises(DiskSpaceError, match="disk full while writing"):
        pull_llm(store, HubFile(REPO, FILE), None, opts)
    assert not (small_disk / "hub" / REPO / FILE).exists()


# -- hostile servers and cut transfers ------------------------------------------------------------------------
def test_the_token_never_follows_a_redirect_to_another_host(hub: FakeHub, big: bytes) -> None:
    hub.add_file(REPO, FILE, big, gated=True)
    hub.add_file(REPO, "config.json", b"{}", lfs=False)
    code, _, err = run("models", "pull", SPEC, "-q", "--token", "hf_valid")
    assert code == 0, err
    cdn = [r for r in hub.requests if r["path"].startswith("/cdn/")]
    on_hub = [r for r in hub.requests if "/resolve/" in r["path"]]
    assert cdn and on_hub
    assert all("authorization" not in r["headers"] for r in cdn), "the CDN (another host) got the token"
    assert all(r["headers"].get("authorization") == "Bearer hf_valid" for r in on_hub)


@pytest.mark.parametrize("chunked", [False, True], ids=["advertised", "chunked"])
def test_a_server_sending_more_than_it_advertised_is_cut_off(hub: FakeHub, big: bytes, chunked: bool) -> None:
    hub.add_file(REPO, FILE, big)
    extra = 512 * MIB
    hub.overlong(REPO, FILE, extra, chunked=chunked)
    code, out, err = run("models", "pull", SPEC, "-q")
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1] == (
        f"error: {FILE}: the server sent more than the {len(big)} bytes it advertised; the download was discarded"
    )
    assert partial_size() == 0 and not (models_dir() / "hub" / REPO / FILE).exists()
    time.sleep(0.5)  # the server notices the client has gone
    assert hub.sent_bytes < len(big) + 64 * MIB, "the client read on past the advertised size"


def _interrupted_pull(hub: FakeHub, at: int, spec: str = SPEC) -> int:
    """Start a pull in a child, kill it once `at` bytes are in the partial; the bytes kept."""
    release = hub.stall_after(at + MIB)
    proc = spawn_pull(spec, "-q")
    try:
        assert hub.wait_for_stall(30)
        wait_for(lambda: partial_size() >= at)
        proc.kill()
        proc.communicate(timeout=20)
    finally:
        release.set()
        proc.kill()
    return partial_size()


def test_a_partial_is_never_resumed_against_other_bytes(hub: FakeHub, big: bytes) -> None:
    """A file that is not in LFS (so the hub advertises no sha256) changes between two pulls."""
    hub.add_file(REPO, FILE, big, lfs=False)
    assert _interrupted_pull(hub, 10 * MIB) >= 10 * MIB
    newer = make_gguf(len(big) - 4096, seed=7)
    newer += b"\0" * (len(big) - len(newer))
    hub.add_file(REPO, FILE, newer, lfs=False)
    code, out, err = run("models", "pull", SPEC, "-q")
    assert code == 0, err
    assert Path(out.strip()).read_bytes() == newer


@pytest.fixture
def part_reads() -> Iterator[list[str]]:
    """Every time a partial download is opened for reading."""
    seen: list[str] = []
    active = [True]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if active[0] and event == "open" and str(args[0]).endswith(".part") and "r" in str(args[1] or ""):
            seen.append(str(args[0]))

    sys.addaudithook(hook)
    yield seen
    active[0] = False


def test_bytes_are_hashed_as_they_arrive_and_checked_as_strictly(
    hub: FakeHub, big: bytes, part_reads: list[str]
) -> None:
    hub.add_file(REPO, FILE, big)
    code, _, err = run("models", "pull", SPEC, "-q")
    assert code == 0, err
    assert len(part_reads) <= 1, f"the finished download was read again to hash it: {part_reads}"
    # a resumed partial is hashed from its own bytes: damage in them is still caught
    second = "second-Q4_K_M.gguf"
    hub.add_file(REPO, second, big)
    _interrupted_pull(hub, 10 * MIB, f"{REPO}/{second}")
    part = next((models_dir() / ".partial").glob("*.part"))
    damaged = bytearray(part.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    part.write_bytes(damaged)
    code, _, err = run("models", "pull", f"{REPO}/{second}", "-q")
    assert code == 1 and "checksum mismatch" in err and "discarded" in err
    assert partial_size() == 0


def test_ctrl_c_reaches_a_pull_even_when_the_suite_ignores_it(hub: FakeHub, big: bytes) -> None:
    """A suite started from a background job inherits SIGINT as ignored; its children must not."""
    hub.add_file(REPO, FILE, big)
    release = hub.stall_after(12 * MIB)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = spawn_pull(SPEC, "-q")
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert hub.wait_for_stall(30)
        wait_for(lambda: partial_size() >= 10 * MIB)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        release.set()
        proc.kill()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
