"""Run modes never touch the network: huggingface_hub (which faster-whisper and others bring along) is kept in
its offline mode while they run, whether it is imported yet or not."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .settings import TRUE


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE


def _sync() -> None:
    """huggingface_hub reads HF_HUB_OFFLINE once, at import: bring an imported copy in line with the environment."""
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        value = _flag(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))
        setattr(constants, "HF_HUB_OFFLINE", value)  # noqa: B010  # a module found at run time


@contextmanager
def hub_offline() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 inside (any hub request fails at once, without a socket); as it was afterwards."""
    saved = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    _sync()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved
        _sync()
