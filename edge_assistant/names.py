"""Names that become paths: repo ids and file paths from the command line, a catalog or a server, checked before
they reach the network or the disk; and the test that a path stays inside a folder."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from .errors import UsageError, first_line


def repo_id(value: str) -> str:
    """A hub repo id as huggingface_hub accepts it (`owner/name`; no `..`, `--`, backslashes)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]  # public, re-exported lazily

    try:
        validate_repo_id(value)
    except HFValidationError as exc:
        raise UsageError(f"invalid repo id {value!r}: {first_line(exc)}") from None
    return value


def relative_path(value: str, what: str = "file name") -> str:
    """A `/`-separated path that stays below the folder it is joined to: not absolute, no `..` or `.` parts,
    no empty parts, no backslashes or control characters."""
    problem = None
    if not value:
        problem = "it is empty"
    elif value.startswith("/"):
        problem = "it is absolute"
    elif "\\" in value:
        problem = "it holds a backslash"
    elif any(unicodedata.category(c) == "Cc" for c in value):
        problem = "it holds a control character"
    elif any(part in ("", ".", "..") for part in value.split("/")):
        problem = "it has an empty, '.' or '..' part"
    if problem:
        raise UsageError(f"invalid {what} {value!r}: {problem}")
    return value


def inside(root: Path, path: Path) -> bool:
    """`path` (its folder resolved, links followed) lies inside `root` and is not `root` itself.

    The last part is not followed: removing or replacing a symlink inside `root` touches the link, not its target.
    """
    base = os.path.realpath(root)
    folder = os.path.realpath(path.parent)
    if path.name in ("", ".", ".."):
        return False
    full = os.path.join(folder, path.name)
    return os.path.commonpath([base, full]) == base and full != base
