"""Archives (vosk model zips): unpacked only after every path in them is checked to stay inside the target, and
their unpacked size to stay within what a model of that size can hold (no zip bombs)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import DownloadError, UsageError
from ..names import relative_path

UNPACK_RATIO = 4
"""Unpacked bytes allowed per archive byte (model files compress to about half; a zip bomb to a thousandth)."""
UNPACK_MARGIN = 64 * 1024 * 1024
"""Unpacked bytes allowed beyond the ratio (small archives of text files compress better)."""


def unpacked_limit(archive_bytes: int) -> int:
    """The most an archive of `archive_bytes` (the catalog's size, else the download's) may unpack to."""
    return archive_bytes * UNPACK_RATIO + UNPACK_MARGIN


def safe_extract_zip(archive: Path, dest: Path, max_bytes: int | None = None) -> None:
    """Unpack a zip into dest, refusing absolute paths, '..', links that would escape it, and an unpacked total
    above `max_bytes`."""
    with zipfile.ZipFile(archive) as zf:
        total = 0
        for info in zf.infolist():
            name = info.filename.rstrip("/") if info.is_dir() else info.filename
            try:
                relative_path(name, "path in archive")
            except UsageError:
                raise DownloadError(f"{archive.name}: unsafe path in archive: {info.filename!r}; refused") from None
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise DownloadError(f"{archive.name}: unsafe path in archive: {info.filename!r} is a link; refused")
            total += info.file_size
            if max_bytes is not None and total > max_bytes:
                raise DownloadError(
                    f"{archive.name}: unpacks to more than {max_bytes:,} bytes, far beyond its size; refused "
                    "(a damaged or hostile archive)"
                )
        zf.extractall(dest)
