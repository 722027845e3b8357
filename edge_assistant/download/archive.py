"""Archives (vosk model zips): unpacked only after every path in them is checked to stay inside the target."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from ..errors import DownloadError


def safe_extract_zip(archive: Path, dest: Path) -> None:
    """Unpack a zip into dest, refusing absolute paths, '..' and links that would escape it."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            if (
                name.is_absolute()
                or ".." in name.parts
                or info.filename.startswith(("/", "\\"))
                or "\\" in info.filename
                or (info.external_attr >> 16) & 0o170000 == 0o120000
            ):
                raise DownloadError(f"{archive.name}: unsafe path in archive: {info.filename!r}; refused")
        zf.extractall(dest)
