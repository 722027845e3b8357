"""What the hub (or a mirror, or a plain HTTPS server) says about a file, and its errors as user errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import DownloadError, GatedRepoError, OfflineError, first_line
from ..settings import DEFAULT_ENDPOINT, HubSettings

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_PORTS = {"http": 80, "https": 443}
HUB_HOSTS = (DEFAULT_ENDPOINT, "https://hf.co")
"""Where a hub token belongs besides the endpoint the user named."""


@dataclass(frozen=True)
class Remote:
    """What the server says about a file before we fetch it."""

    url: str
    """Where the bytes are (after redirects, e.g. a CDN)."""
    size: int | None
    sha256: str | None
    """The LFS sha256 the hub advertises (ETag), when it is one."""
    commit: str | None
    etag: str | None = None
    """The server's name for these bytes (an LFS sha256, a git blob id, a web server's tag)."""

    @property
    def content_key(self) -> str | None:
        """What names these exact bytes, to key a partial download by: never resumed against other bytes."""
        return self.sha256 or self.etag


def _repo_url(hub: HubSettings, repo: str) -> str:
    return f"{hub.endpoint}/{repo}"


def map_hub_error(exc: BaseException, hub: HubSettings, repo: str, what: str) -> Exception:
    """Turn huggingface_hub/httpx errors into one-line user errors."""
    from huggingface_hub import errors as hf

    if isinstance(exc, hf.GatedRepoError):
        token_hint = (
            "the token given has no access: accept the licence with the account that owns it"
            if hub.token
            else "pass a token with --token or HF_TOKEN"
        )
        return GatedRepoError(f"this repo is gated: accept the licence at {_repo_url(hub, repo)} and {token_hint}")
    if isinstance(exc, hf.RepositoryNotFoundError):
        hint = "" if hub.token else " (if it is private or gated, pass a token with --token or HF_TOKEN)"
        return DownloadError(f"repository {repo} not found on {hub.endpoint}{hint}")
    if isinstance(exc, hf.RevisionNotFoundError):
        return DownloadError(f"revision not found in {repo}: {what}")
    if isinstance(exc, hf.EntryNotFoundError):
        return DownloadError(f"{what} is not in {repo}")
    if isinstance(exc, hf.OfflineModeIsEnabled):
        return OfflineError(f"offline mode is on (HF_HUB_OFFLINE); cannot fetch {what}")
    if isinstance(exc, hf.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        if status in (401, 403):
            return GatedRepoError(
                f"access denied (HTTP {status}) to {repo}: if the repo is gated, accept the "
                f"licence at {_repo_url(hub, repo)} and pass a token"
            )
        return DownloadError(f"{hub.endpoint} answered HTTP {status} for {what}")
    return DownloadError(f"cannot reach {hub.endpoint}: {first_line(exc)}")


def transient_errors() -> tuple[type[BaseException], ...]:
    """A transfer cut or stalled mid-way: worth resuming at once."""
    import httpx2

    return (httpx2.ConnectError, httpx2.TimeoutException, httpx2.RemoteProtocolError, httpx2.ReadError)


def network_errors() -> tuple[type[BaseException], ...]:
    import httpx2
    from huggingface_hub import errors as hf

    return (
        httpx2.HTTPError,
        hf.HfHubHTTPError,
        hf.OfflineModeIsEnabled,
        hf.EntryNotFoundError,
        ConnectionError,
        TimeoutError,
    )


def remote_info(repo: str, filename: str, revision: str | None, hub: HubSettings) -> Remote:
    """HEAD the file on the hub: final URL, size, advertised sha256, commit."""
    if hub.offline:
        raise OfflineError(f"offline mode: not fetching {repo}/{filename}")
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo, filename, revision=revision, endpoint=hub.endpoint)
    try:
        meta = get_hf_file_metadata(url, token=hub.token or False)
    except network_errors() as exc:
        raise map_hub_error(exc, hub, repo, filename) from None
    etag = _etag(meta.etag)
    return Remote(
        url=meta.location or url,
        size=meta.size,
        sha256=etag if etag and SHA256_RE.match(etag) else None,
        commit=meta.commit_hash,
        etag=etag,
    )


def _etag(raw: str | None) -> str | None:
    """An ETag without its quotes and weak marker, lowercased; None when there is none."""
    value = (raw or "").strip().removeprefix("W/").strip('"').lower()
    return value or None


def url_info(url: str, hub: HubSettings) -> Remote:
    """HEAD a plain HTTPS file (no token is sent to it)."""
    if hub.offline:
        raise OfflineError(f"offline mode: not fetching {url}")
    from huggingface_hub import get_hf_file_metadata

    try:
        meta = get_hf_file_metadata(url, token=False)
    except network_errors() as exc:
        raise map_hub_error(exc, hub, url, url) from None
    return Remote(url=meta.location or url, size=meta.size, sha256=None, commit=None, etag=_etag(meta.etag))


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(parts.scheme, 0)


def token_goes_to(url: str, hub: HubSettings) -> bool:
    """The hub token may be sent to `url`: the hub (or mirror) the user named, or the hub's own hosts. A CDN or
    any other host a redirect leads to never sees it."""
    return _origin(url) in {_origin(hub.endpoint), *(_origin(h) for h in HUB_HOSTS)}


def auth_headers(hub: HubSettings, url: str | None = None) -> dict[str, str]:
    """The hub's request headers for `url` (user agent; the token only where `token_goes_to`; never for a plain
    download, url None)."""
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]  # public, re-exported lazily

    send = url is not None and token_goes_to(url, hub)
    return dict(build_hf_headers(token=(hub.token or False) if send else False))
