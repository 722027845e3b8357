"""ask, chat and translate through the CLI, with the embedded SmolLM2, and their bad inputs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_assistant.cli import main
from edge_assistant.settings import Paths
from edge_assistant.store import Installed, Store, sha256_file
from tests.helpers import TEMPLATE_TOKENS, run, spawn

pytestmark = pytest.mark.slow


def test_ask_streams_the_answer() -> None:
    code, out, err = run("ask", "What is the capital of France?", "--temperature", "0")
    assert code == 0, err
    assert "Paris" in out and not TEMPLATE_TOKENS.search(out)


def test_ask_reads_stdin_and_prints_json() -> None:
    code, out, err = run("ask", "--json", "--temperature", "0", stdin="What is the capital of France?\n")
    assert code == 0, err
    data = json.loads(out)
    assert "Paris" in data["text"]
    assert data["model"] == "smollm2-135m-instruct:Q4_1"
    assert data["finish_reason"] == "stop"
    assert data["tokens"]["prompt"] > 10 and data["tokens"]["completion"] > 0
    assert data["timings"]["ttft_s"] > 0 and data["timings"]["load_s"] > 0


def test_ask_with_a_system_prompt_and_model_path(smollm2: Path) -> None:
    code, out, err = run(
        "ask", "-m", str(smollm2), "--system", "Be concise.", "--temperature", "0", "What is the capital of France?"
    )
    assert code == 0, err
    assert "Paris" in out


def test_chat_with_piped_stdin() -> None:
    lines = "What is the capital of France?\n/reset\nWhat is the capital of France?\n/exit\nnever read\n"
    code, out, err = run("chat", "--temperature", "0", stdin=lines)
    assert code == 0, err
    answers = [line for line in out.splitlines() if line.strip()]
    assert len(answers) == 2 and all("Paris" in a for a in answers)
    assert "conversation reset" in err


def test_translate_text() -> None:
    code, out, err = run("translate", "--to", "fr", "Good morning.", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["to"] == "fr" and data["sentences"][0]["source"] == "Good morning."
    assert data["text"] and not TEMPLATE_TOKENS.search(data["text"])


def test_translate_to_japanese_streams_japanese_script() -> None:
    code, out, err = run("translate", "--to", "Japanese", "Good morning. How are you today?")
    assert code == 0, err
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", out), out
    assert not TEMPLATE_TOKENS.search(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["translate", "--to", "klingon", "hi"], "unknown language 'klingon'"),
        (["translate", "--to", "ja"], "nothing to translate"),
        (["ask", "-m", "llama-3.2-1b-instruct", "hi"], "not installed; get it with: edge-assistant models pull"),
        (["ask", "-m", "nope-model", "hi"], "unknown model 'nope-model'"),
        (["ask", "-m", "/nonexistent/model.gguf", "hi"], "model file not found"),
        (["ask", "--backend", "remote", "hi"], "--backend remote needs --base-url"),
        (["ask", "--backend", "remote", "--base-url", "http://127.0.0.1:9/v1", "hi"], "cannot reach the model server"),
    ],
)
def test_bad_inputs_are_one_line_errors(args: list[str], message: str) -> None:
    code, _out, err = run(*args)
    assert code in (1, 2), (code, err)
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_file_that_is_not_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_text("hello")
    code, _, err = run("ask", "-m", str(bad), "hi")
    assert code == 1 and "is not a GGUF model file" in err


def test_truncated_gguf(tmp_path: Path, smollm2: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with smollm2.open("rb") as src:
        cut.write_bytes(src.read(40_000_000))
    code, _, err = run("ask", "-m", str(cut), "hi")
    assert code == 1 and "is truncated: 40,000,000 bytes of 98,362,432" in err


def test_model_too_big_for_memory_is_refused_unless_forced(smollm2: Path, hermetic: Path) -> None:
    hermetic.mkdir(parents=True, exist_ok=True)
    (hermetic / "catalog.toml").write_text("""
[[llm]]
id = "huge-model"
name = "Huge"
family = "chatml"
arch = "llama"
params_b = 2000
context = 8192
licence = "MIT"
repo = "org/Huge-GGUF"
[llm.quants.Q4_K_M]
file = "huge.gguf"
bytes = 1200000000000
""")
    store = Store(Paths.from_env().models)
    target = store.llm_file("huge-model", "huge.gguf")
    target.parent.mkdir(parents=True)
    shutil.copy(smollm2, target)
    store.record(
        Installed("llm", "huge-model", "Q4_K_M", target, target.stat().st_size, "hub", sha256=sha256_file(target))
    )
    code, _, err = run("ask", "-m", "huge-model", "hi")
    assert code == 1 and re.search(
        r"huge-model:Q4_K_M needs about \d+\.\d GiB of memory and \d+\.\d GiB is "
        r"available; pick a smaller model or pass --force",
        err,
    ), err
    code, out, err = run("ask", "-m", "huge-model", "--force", "--temperature", "0", "Capital of France?")
    assert code == 0, err
    assert out.strip()


def test_ctrl_c_mid_answer_keeps_the_partial_answer() -> None:
    proc = spawn(
        "ask",
        "--max-tokens",
        "2000",
        "--temperature",
        "0.8",
        "--seed",
        "1",
        "Write a very long story about a dragon.",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = proc.stdout.read(20)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert len(first) == 20 and len(first + out) > 20
    assert b"interrupted" in err and b"Traceback" not in err


# -- hostile input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["ask"], ["translate", "--to", "fr"]])
def test_text_on_stdin_that_is_not_utf8_is_one_line(command: list[str]) -> None:
    result = CliRunner().invoke(main, command, input=b"caf\xe9 au lait?\n")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "error: stdin is not UTF-8 text (byte 0xe9 at offset 3); convert it first, e.g. with iconv -f latin1 -t utf-8"
    )


@pytest.mark.parametrize("how", ["stdin", "argument"])
def test_non_utf8_text_in_a_c_locale_is_one_line(how: str) -> None:
    """In the C locale Python reads the bytes with escapes in place of what is not UTF-8."""
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    args = [b"ask"] + ([b"caf\xe9?"] if how == "argument" else [])
    proc = subprocess.run(
        [sys.executable.encode(), b"-m", b"edge_assistant", *args],
        input=b"caf\xe9?\n" if how == "stdin" else None,
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert b"is not UTF-8 text" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_chat_keeps_the_conversation_when_a_model_switch_fails() -> None:
    lines = "/model no-such-model\n/model ./missing.gguf\nca\xff\nWhat is the capital of France?\n"
    result = CliRunner().invoke(
        main, ["chat", "--temperature", "0", "--max-tokens", "24"], input=lines.encode("latin-1")
    )
    assert result.exit_code == 0, result.stderr
    assert "error: unknown model 'no-such-model'" in result.stderr
    assert "error: model file not found: missing.gguf" in result.stderr
    assert "error: that line is not UTF-8 text" in result.stderr
    assert "Paris" in result.stdout and "Traceback" not in result.stderr
