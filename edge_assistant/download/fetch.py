"""Fetching bytes into a resumable partial file: Range requests, disk checks, size and sha256 checks.

The bytes are hashed as they arrive (a resumed partial is hashed once, up to its end, before the new bytes
come), so a finished download is verified without reading it again. A server that sends more than it
advertised is cut off at the advertised size and its partial discarded.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import DiskSpaceError, DownloadError, first_line
from ..settings import HubSettings
from ..store import CHUNK, Store
from .hub import Remote, map_hub_error, network_errors, transient_errors

log = logging.getLogger(__name__)
DISK_MARGIN = 64 * 1024 * 1024
RETRIES = 5
"""Attempts in a row that bring no new byte before a cut transfer is given up (to be resumed by the next pull)."""
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


class _Overlong(Exception):
    """The server sent more bytes than it advertised."""


class _Restart(Exception):
    """The server ignored the Range request and sends the whole file again."""


def _check_space(store: Store, need: int, opts: PullOptions) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    free = opts.free_bytes(store.root) if opts.free_bytes else shutil.disk_usage(store.root).free
    if free < need + DISK_MARGIN:
        raise DiskSpaceError(f"not enough disk space in {store.root}: need {gb(need + DISK_MARGIN)}, {gb(free)} free")


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _hash_existing(part: Path, have: int) -> Any:
    """sha256 state after the first `have` bytes of the partial (read once, when resuming)."""
    digest = hashlib.sha256()
    with part.open("rb") as f:
        left = have
        while left and (chunk := f.read(min(CHUNK, left))):
            digest.update(chunk)
            left -= len(chunk)
    return digest


def _bar(opts: PullOptions, label: str, total: int | None, initial: int) -> Any:
    if opts.progress is None:
        return None
    return opts.progress(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label)


def _receive(remote: Remote, headers: dict[str, str], f: BinaryIO, digest: Any, bar: Any) -> None:
    """One GET from the end of the partial `f` on, appended to it and hashed as the bytes come."""
    from huggingface_hub import constants
    from huggingface_hub.utils import (  # type: ignore[attr-defined]  # public, re-exported lazily
        hf_raise_for_status,
        http_stream_backoff,
    )

    have = f.tell()
    request = {**headers, "Accept-Encoding": "identity"}  # sizes as advertised, not compressed ones
    if have:
        request["Range"] = f"bytes={have}-"
    with http_stream_backoff(
        "GET",
        remote.url,
        headers=request,
        timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
        retry_on_exceptions=(),
        retry_on_status_codes=(408, 429),
    ) as response:
        hf_raise_for_status(response)
        if have and response.status_code == 200:
            raise _Restart
        length = response.headers.get("Content-Length", "")
        if remote.size is not None and length.isdigit() and have + int(length) > remote.size:
            raise _Overlong
        for chunk in response.iter_bytes():  # as they arrive: no re-chunking copies
            have += len(chunk)
            if remote.size is not None and have > remote.size:
                raise _Overlong
            f.write(chunk)
            digest.update(chunk)
            if bar is not None:
                bar.update(len(chunk))


def _transfer(part: Path, remote: Remote, headers: dict[str, str], opts: PullOptions, label: str) -> tuple[int, str]:
    """Bring the partial to its end (retrying transient cuts that make progress); return (size, sha256)."""
    have = part.stat().st_size if part.exists() else 0
    digest = _hash_existing(part, have) if have else hashlib.sha256()
    bar = _bar(opts, label, remote.size, have)
    failures = 0
    try:
        with part.open("ab") as f:
            while remote.size is None or have < remote.size:
                try:
                    _receive(remote, headers, f, digest, bar)
                    have = f.tell()
                    break
                except _Restart:
                    log.info("%s: the server ignored the Range request; starting over", label)
                    f.truncate(0)
                    f.seek(0)
                    have, digest = 0, hashlib.sha256()
                    if bar is not None:
                        bar.reset(total=remote.size)
                except transient_errors() as exc:
                    f.flush()
                    failures = 0 if f.tell() > have else failures + 1
                    have = f.tell()
                    if failures >= RETRIES:
                        raise
                    log.warning("%s: transfer cut at %d bytes (%s); resuming", label, have, first_line(exc))
                    time.sleep(1)
            f.flush()
            os.fsync(f.fileno())
    finally:
        if bar is not None:
            bar.close()
    return have, digest.hexdigest()


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

    `key` names the content (its sha256 or ETag), so a partial is never resumed against other bytes. Returns
    the verified partial path and its sha256. Raises with the partial discarded when the bytes are wrong, or
    kept (for resume) when the transfer was cut.
    """
    part = store.partial_dir / f"{key}.part"
    store.partial_dir.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if remote.size is not None and have > remote.size:
        part.unlink()
        have = 0
    if remote.size is not None:
        _check_space(store, remote.size - have, opts)
    if have:
        opts.notify(f"resuming {label} at {gb(have)}")
    try:
        size, digest = _transfer(part, remote, headers, opts, label)
    except _Overlong:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{label}: the server sent more than the {remote.size} bytes it advertised; the download was discarded"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskSpaceError(
                f"disk full while writing {part}; free some space and pull again (the download resumes)"
            ) from None
        if isinstance(exc, network_errors()):
            raise map_hub_error(exc, opts.hub, label, label) from None
        raise DownloadError(f"{label}: {first_line(exc)}") from None
    except transient_errors() as exc:
        raise DownloadError(f"{label}: the transfer was cut ({first_line(exc)}); pull again to resume") from None
    except network_errors() as exc:
        raise map_hub_error(exc, opts.hub, label, label) from None
    if remote.size is not None and size != remote.size:
        raise DownloadError(f"{label}: got {size} bytes of {remote.size}; pull again to resume")
    if expect_sha256 and digest != expect_sha256:
        part.unlink()
        raise DownloadError(
            f"{label}: checksum mismatch (expected sha256 {expect_sha256[:16]}…, got "
            f"{digest[:16]}…); the bad download was discarded"
        )
    return part, digest
