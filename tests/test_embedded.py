"""Models shipped by PyPI packages are found and usable without any download."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from edge_assistant.cli import main
from edge_assistant.gguf import check_gguf


def test_pull_embedded_registers_everything_offline() -> None:
    runner = CliRunner(env={"HF_HUB_OFFLINE": "1"})
    result = runner.invoke(main, ["models", "pull", "--embedded"])
    assert result.exit_code == 0, result.stderr
    refs = {line.split("\t")[0] for line in result.stdout.splitlines()}
    assert {
        "smollm2-135m-instruct:Q4_1",
        "gemma-3-270m:Q4_K_M",
        "whisper-tiny.en",
        "piper-en_us-joe-medium",
        "vosk-small-ko-0.22",
    } <= refs
    gemma = Path(dict(line.split("\t") for line in result.stdout.splitlines())["gemma-3-270m:Q4_K_M"])
    info = check_gguf(gemma)
    assert info.architecture == "gemma3" and info.chat_template is None
    listed = json.loads(runner.invoke(main, ["models", "list", "--installed", "--json"]).stdout)
    assert {"smollm2-135m-instruct", "gemma-3-270m"} <= {r["id"] for r in listed}
    verify = runner.invoke(main, ["models", "verify", "gemma-3-270m", "--json"])
    assert verify.exit_code == 0 and json.loads(verify.stdout)[0]["status"] == "ok"


def test_pull_of_an_embedded_model_needs_no_network() -> None:
    result = CliRunner(env={"HF_HUB_OFFLINE": "1"}).invoke(main, ["models", "pull", "smollm2-135m-instruct:Q4_1"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
