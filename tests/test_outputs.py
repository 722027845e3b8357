"""Where outputs go: never over an input, never replacing a device or a pipe, written through pipes and
`/dev/stdout`, and with the modes the umask allows."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.errors import UsageError
from edge_assistant.files import atomic_write_text, check_outputs, open_append
from edge_assistant.tts.delivery import WavSink
from edge_assistant.tts.speaker import Speech
from tests.helpers import run, spawn

QUESTION = Path(__file__).parent.parent / "edge_assistant" / "data" / "question.wav"


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o002)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def chardev(path: Path) -> Path:
    """A character device node like /dev/null (major 1, minor 3): needs root, as CI has."""
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return path


def speech(seconds: float, text: str) -> Speech:
    return Speech(np.full(int(16000 * seconds), 1000, dtype=np.int16), 16000, text)


# -- an output is never an input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["assistant", "--input", "{q}", "--speak-to", "{q}"], "spoken answers"),
        (["assistant", "--input", "{q}", "--no-speak", "--log", "{link}"], "the turn log"),
        (["transcribe", "--input", "{q}", "-o", "{q}"], "notes"),
        (["translate", "--to", "fr", "--input", "{q}", "-o", "{link}"], "the transcript"),
        (["assistant", "--input", "{q}", "--speak-to", "{a}", "--log", "{a}"], "the turn log and spoken answers"),
    ],
)
def test_an_output_that_is_an_input_or_another_output_is_refused_before_any_work(
    tmp_path: Path, args: list[str], what: str
) -> None:
    question = tmp_path / "q.wav"
    question.write_bytes(QUESTION.read_bytes())
    os.link(question, tmp_path / "hardlink.wav")
    filled = [a.format(q=question, link=tmp_path / "hardlink.wav", a=tmp_path / "a.out") for a in args]
    code, out, err = run(*filled)
    assert code == 2 and out == "", err
    assert err.startswith(f"error: {what}") and len(err.strip().splitlines()) == 1, err
    assert question.read_bytes() == QUESTION.read_bytes()
    assert not (tmp_path / "a.out").exists()


# -- devices, pipes and links are written through, never replaced ----------------------------------------------
def test_spoken_answers_to_a_device_node_leave_the_node_in_place(tmp_path: Path) -> None:
    node = chardev(tmp_path / "NODE")
    code, out, err = run("assistant", "--input", str(QUESTION), "--speak-to", str(node))
    assert code == 0, err
    assert "Paris" in out
    assert stat.S_ISCHR(node.lstat().st_mode), "the device node was replaced by a file"


def test_a_fifo_gets_each_turn_as_a_wav_of_its_own(tmp_path: Path) -> None:
    fifo = tmp_path / "answers.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    got = threading.Semaphore(0)

    def read_turns() -> None:
        for _ in range(2):
            with fifo.open("rb") as f:
                received.append(f.read())
            got.release()

    reader = threading.Thread(target=read_turns, daemon=True)
    reader.start()
    sink = WavSink(fifo)
    for seconds in (0.5, 0.25):
        sink.play(speech(seconds, "x"), threading.Event())
        sink.end_turn()
        # the reader takes each turn before the next opens the FIFO (a writer opening while the reader still
        # holds the first turn open would join its stream: FIFO semantics, not the sink's)
        assert got.acquire(timeout=10), "the reader never got its turn"
    reader.join(10)
    assert not reader.is_alive(), "the reader never got its second turn"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    lengths = []
    for data in received:
        (tmp_path / "turn.wav").write_bytes(data)
        with wave.open(str(tmp_path / "turn.wav")) as w:
            lengths.append(w.getnframes() / w.getframerate())
    assert lengths == [0.5, 0.25], "each turn is a whole WAV holding that turn only"


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.wav"
    real.write_bytes(b"old")
    link = tmp_path / "link.wav"
    link.symlink_to(real)
    sink = WavSink(link)
    sink.play(speech(0.5, "x"), threading.Event())
    sink.end_turn()
    assert link.is_symlink() and real.read_bytes().startswith(b"RIFF")


@pytest.mark.parametrize("kind", ["block device", "socket"])
def test_block_devices_and_sockets_are_refused(tmp_path: Path, kind: str) -> None:
    node = tmp_path / "node"
    if kind == "block device":
        os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    else:
        import socket

        server = socket.socket(socket.AF_UNIX)
        server.bind(str(node))
        server.close()
    with pytest.raises(UsageError, match="neither a file, a pipe nor a terminal"):
        check_outputs([("spoken answers", node)])
    sink = WavSink(node)
    sink.play(speech(0.1, "x"), threading.Event())
    with pytest.raises(UsageError, match="neither a file, a pipe nor a terminal"):
        sink.end_turn()
    assert not node.is_file()


def test_notes_to_stdout_through_a_pipe(tmp_path: Path) -> None:
    proc = spawn(
        "transcribe", "--input", str(QUESTION), "-o", "/dev/stdout", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()
    assert "capital of France" in out.decode()


def test_notes_to_a_fifo_with_overwrite(tmp_path: Path) -> None:
    fifo = tmp_path / "notes.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    code, _, err = run("transcribe", "--input", str(QUESTION), "-o", str(fifo), "--format", "txt", "--overwrite")
    out, _ = reader.communicate(timeout=30)
    assert code == 0, err
    assert "capital of France" in out.decode() and stat.S_ISFIFO(fifo.lstat().st_mode)


# -- modes ------------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("umask")
def test_new_outputs_follow_the_umask(tmp_path: Path) -> None:
    answer, log = tmp_path / "answer.wav", tmp_path / "turns.jsonl"
    code, _, err = run("assistant", "--input", str(QUESTION), "--speak-to", str(answer), "--log", str(log))
    assert code == 0, err
    assert (mode(answer), mode(log)) == (0o664, 0o664)


@pytest.mark.usefixtures("umask")
def test_a_replaced_file_keeps_its_mode_and_a_new_one_follows_the_umask(tmp_path: Path) -> None:
    private = tmp_path / "private.txt"
    private.write_text("old")
    private.chmod(0o600)
    atomic_write_text(private, "new")
    assert private.read_text() == "new" and mode(private) == 0o600
    fresh = tmp_path / "sub" / "fresh.txt"
    atomic_write_text(fresh, "x")
    os.close(open_append(tmp_path / "appended.txt"))
    assert mode(fresh) == 0o664 and mode(tmp_path / "appended.txt") == 0o664
