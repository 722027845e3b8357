"""Progress bars on stderr (tqdm, which huggingface_hub already brings): quick on a terminal, sparse in a log."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


class ByteBar(tqdm):  # type: ignore[misc, type-arg]
    """A byte progress bar on stderr with size and speed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("mininterval", 0.5 if sys.stderr.isatty() else 5.0)
        kwargs.setdefault("dynamic_ncols", True)
        super().__init__(*args, **kwargs)
