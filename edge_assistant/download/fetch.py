"""Fetching bytes into a resumable partial file: Range requests, disk checks, size and sha256 checks."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DiskSpaceError, DownloadError, first_line
from ..settings import HubSettings
from ..store import Store, sha256_file
from .hub import Remote, map_hub_error, network_errors

DISK_MARGIN = 64 * 1024 * 1024
Notify = Callable[[str], None]


def _quiet(message: str) -> None:
    """The default reporter: say nothing (the command line passes its own)."""


@dataclass(frozen=True)
class PullOptions:
    """How to pull."""

    hub: HubSettings
    revision: str | None = None
    progress: type[Any] | None = None
    """A tqdm class for the byte progress bar (the command line's); None: no bar."""
    notify: Notify = _quiet
    """Where status lines go."""
    free_bytes: Callable[[Path], int] | None = None
    """Free space probe; defaults to shutil.disk_usage."""


def _silent_bar() -> type[Any]:
    from tqdm import tqdm

    class Silent(tqdm):  # type: ignore[misc, type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "disable": True})

    return Silent


def _check_space(store: Store, need: int, opts: PullOptions) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    free = opts.free_bytes(store.root) if opts.free_bytes else shutil.disk_usage(store.root).free
    if free < need + DISK_MARGIN:
        raise DiskSpaceError(f"not enough disk space in {store.root}: need {gb(need + DISK_MARGIN)}, {gb(free)} free")


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def fetch(
    store: Store,
    key: str,
    remote: Remote,
    headers: dict[str, str],
    opts: PullOptions,
    label: str,
    expect_sha256: str | None,
) -> tuple[Path, str]:
    """Download remote bytes into `.partial/<key>.part`, resuming what is there; verify size and sha256.

    Returns the verified partial path and its sha256. Raises with the partial discarded when the
    bytes are wrong, or kept (for resume) when the transfer was cut.
    """
    from huggingface_hub.file_download import http_get

    part = store.partial_dir / f"{key}.part"
    have = part.stat().st_size if part.exists() else 0
    if remote.size is not None and have > remote.size:
        part.unlink()
        have = 0
    if remote.size is not None:
        _check_space(store, remote.size - have, opts)
    if have:
        opts.notify(f"resuming {label} at {gb(have)}")
    try:
        with part.open("ab") as f:
            if remote.size is None or have < remote.size:
                http_get(
                    remote.url,
                    f,
                    resume_size=have,
                    headers=headers,
                    expected_size=remote.size,
                    displayed_filename=label,
                    tqdm_class=opts.progress or _silent_bar(),
                )
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskSpaceError(
                f"disk full while writing {part}; free some space and pull again (the download resumes)"
            ) from None
        if isinstance(exc, network_errors()):
            raise map_hub_error(exc, opts.hub, label, label) from None
        if "Consistency check failed" in str(exc):
            raise DownloadError(f"{label}: the transfer ended early; pull again to resume") from None
        raise DownloadError(f"{label}: {first_line(exc)}") from None
    except network_errors() as exc:
        raise DownloadError(f"{label}: the transfer was cut ({first_line(exc)}); pull again to resume") from None
    size = part.stat().st_size
    if remote.size is not None and size != remote.size:
        raise DownloadError(f"{label}: got {size} bytes of {remote.size}; pull again to resume")
    opts.notify(f"verifying {label}")
    digest = sha256_file(part)
    if expect_sha256 and digest != expect_sha256:
        part.unlink()
        raise DownloadError(
            f"{label}: checksum mismatch (expected sha256 {expect_sha256[:16]}…, got "
            f"{digest[:16]}…); the bad download was discarded"
        )
    return part, digest
