"""User-facing errors: library code raises these; only the CLI turns them into messages and exit codes."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class EdgeError(Exception):
    """An expected failure with a one-line message for the user."""

    exit_code = 1


class UsageError(EdgeError):
    """The request itself is wrong (unknown model, bad option value)."""

    exit_code = 2


class NotInstalledError(EdgeError):
    """A model or component is not installed here."""


class ModelFileError(EdgeError):
    """A model file is missing, truncated, corrupt or not GGUF."""


class DownloadError(EdgeError):
    """A download failed (network, server, checksum)."""


class GatedRepoError(DownloadError):
    """The repository needs an accepted licence and a token."""


class OfflineError(EdgeError):
    """The network is needed but offline mode is on."""


class DiskSpaceError(EdgeError):
    """Not enough free disk space."""


class ResourceError(EdgeError):
    """Not enough memory or another machine resource."""


class BackendError(EdgeError):
    """The language model backend failed (remote server unreachable, bad answer)."""


class ContextOverflowError(EdgeError):
    """A single message does not fit the model's context."""


class AudioError(EdgeError):
    """An audio input or output problem: no device, no PortAudio, unreadable file."""


class BusyError(EdgeError):
    """A model is busy and its queue is full: try again shortly."""


class TooLargeError(UsageError):
    """A request is larger than the server accepts (body, audio length, text length)."""
