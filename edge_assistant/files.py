"""Durable file writes and the rules every output follows.

Whole files are replaced atomically, records appended and synced one at a time. An output is checked before
any work starts: never a folder, never one of the inputs, never two outputs in one file. Only a regular file
(or a new one) is ever replaced; anything else, a FIFO, a terminal, `/dev/stdout`, a symlink, is written
through, and a block device or a socket is refused. New files get the mode the umask allows, like any
other tool's; a replaced file keeps its own mode.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import UsageError


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` survive a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def umask() -> int:
    """The process umask, read without changing it (Linux), else by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current


def new_file_mode() -> int:
    """The mode a new file gets: 0666 less the umask."""
    return 0o666 & ~umask()


# -- what an output path is ------------------------------------------------------------------------
def _kind(path: Path) -> str:
    """'new' (nothing there), 'file' (a regular file: replace it), 'through' (write through it), or raise."""
    try:
        own = path.lstat()
    except FileNotFoundError:
        return "new"
    if stat.S_ISREG(own.st_mode):
        return "file"
    if stat.S_ISDIR(own.st_mode):
        raise UsageError(f"{path} is a folder; name a file")
    try:
        target = path.stat()
    except FileNotFoundError:
        return "through"  # a dangling symlink: writing through creates what it points at
    if stat.S_ISDIR(target.st_mode):
        raise UsageError(f"{path} is a folder; name a file")
    if stat.S_ISREG(target.st_mode) or stat.S_ISFIFO(target.st_mode) or stat.S_ISCHR(target.st_mode):
        return "through"
    raise UsageError(f"{path} is neither a file, a pipe nor a terminal; refusing to write into it")


def is_stream(path: Path) -> bool:
    """The output is a pipe or a device (a FIFO, a terminal, /dev/null): written through, never re-read."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _writable_folder(path: Path) -> Path | None:
    """The nearest existing folder above `path` when it cannot be written, else None."""
    folder = path.expanduser().absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the missing folders below it are created on writing
    return None if folder.is_dir() and os.access(folder, os.W_OK) else folder


def check_outputs(outputs: Iterable[tuple[str, Path | None]], inputs: Iterable[Path | None] = ()) -> None:
    """Refuse, before any work starts, outputs (what, path) that cannot or must not be written: a folder, a
    device that is not a terminal or a pipe, a folder without write access, one of the inputs, or a file
    that another output also writes."""
    sources = [p for p in inputs if p is not None]
    seen: list[tuple[str, Path]] = []
    for what, path in outputs:
        if path is None:
            continue
        try:
            kind = _kind(path)
        except UsageError as exc:
            raise UsageError(f"cannot write {what} to {exc}") from None
        if kind == "new" and (folder := _writable_folder(path)) is not None:
            raise UsageError(f"cannot write {what} to {path}: {folder} is not a writable folder")
        for source in sources:
            if _same(path, source):
                raise UsageError(f"{what} would overwrite the input {source}; name another file")
        for other, earlier in seen:
            if _same(path, earlier) or path.absolute() == earlier.absolute():
                raise UsageError(f"{what} and {other} are the same file {path}; name two files")
        seen.append((what, path))


# -- writing ----------------------------------------------------------------------------------------
def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file through `write` so that readers see the old or the new content, never a mix.

    A regular file (or a new one) is replaced atomically and keeps its mode (a new one: 0666 less the umask);
    a pipe, a device or a symlink is written through instead of being replaced.
    """
    kind = _kind(path)
    if kind == "through":
        with open(path, "wb") as f:  # follows a symlink; a FIFO or a terminal takes the bytes as they come
            write(f)
        return
    mode = stat.S_IMODE(path.stat().st_mode) if kind == "file" else new_file_mode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    def write(f: BinaryIO) -> None:
        f.write(text.encode("utf-8"))

    atomic_write(path, write)


def open_append(path: Path) -> int:
    """A descriptor that appends to `path` (created, with its folders, when missing; a pipe or a terminal is
    written through)."""
    _kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)


def regular(fd: int) -> bool:
    """The descriptor is a regular file (one that can be truncated and synced)."""
    return stat.S_ISREG(os.fstat(fd).st_mode)


def truncate(fd: int) -> None:
    """Empty a regular file; a pipe or a terminal has nothing to empty."""
    if regular(fd):
        os.ftruncate(fd, 0)


def append_synced(fd: int, data: bytes) -> None:
    """Append all of `data` and, for a regular file, sync it to disk before returning: a crash loses no record
    written."""
    while data:
        written = os.write(fd, data)
        data = data[written:]
    if regular(fd):
        os.fsync(fd)
