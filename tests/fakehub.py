"""A local fake of the Hugging Face Hub HTTP API, for download tests.

Answers like huggingface.co does for the calls `huggingface_hub` makes when downloading files:
``HEAD/GET /{repo}/resolve/{rev}/{file}``, ``GET /api/models/{repo}[/revision/{rev}]``,
``GET /api/models/{repo}/tree/{rev}`` (so ``snapshot_download`` works) and the CDN the hub redirects LFS files
to.  The CDN listens on its own port (``cdn_url``) because `huggingface_hub` only stops following a
``/resolve`` redirect when it leaves the hub's origin, and reads the file metadata from that redirect.
No ``X-Xet-*`` headers are ever sent, so clients always use plain HTTP.

Stdlib only; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TypedDict, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

VALID_TOKEN = "hf_valid"
_CHUNK = 64 * 1024


class RequestRecord(TypedDict):
    """One logged request; header names are lowercased."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _File:
    repo_id: str
    filename: str
    data: bytes
    served: bytes
    sha256: str
    blob_id: str
    lfs: bool
    extra: int = 0
    """Zero bytes the CDN sends after the file (more than the hub advertised)."""
    chunked: bool = False
    """The CDN sends the body chunked, without a Content-Length."""

    @property
    def pointer(self) -> bytes:
        """The git-lfs pointer file git stores in place of an LFS file."""
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n"
        ).encode()


@dataclass
class _Repo:
    repo_id: str
    gated: bool = False
    revisions: dict[str, str] = field(default_factory=dict)  # branch/tag -> commit sha
    # commit sha -> filename -> file
    files: dict[str, dict[str, _File]] = field(default_factory=dict)


@dataclass
class _Stall:
    nbytes: int
    release: threading.Event
    reached: threading.Event


class _Unsatisfiable(Exception):
    pass


_API_RE = re.compile(r"^(?P<repo>.+?)/(?P<kind>revision|tree)/(?P<rest>.*)$")


def _tree(files: list[_File], prefix: str, recursive: bool) -> list[dict[str, object]]:
    """Entries like ``GET /api/models/{repo}/tree/{rev}/{prefix}`` returns (folders first, then files)."""
    base = f"{prefix}/" if prefix else ""
    folders: dict[str, None] = {}
    out: list[dict[str, object]] = []
    for entry in files:
        if not entry.filename.startswith(base):
            continue
        parts = entry.filename[len(base) :].split("/")
        for depth in range(1, len(parts) if recursive else min(2, len(parts))):
            folders[base + "/".join(parts[:depth])] = None
        if recursive or len(parts) == 1:
            item: dict[str, object] = {
                "type": "file",
                "oid": entry.blob_id,
                "size": len(entry.data),
                "path": entry.filename,
            }
            if entry.lfs:
                item["lfs"] = {
                    "oid": entry.sha256,
                    "size": len(entry.data),
                    "pointerSize": len(entry.pointer),
                }
            out.append(item)
    dirs: list[dict[str, object]] = [
        {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
        for path in folders
    ]
    return dirs + out


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=`` range into (start, end inclusive); None means "ignore, send everything"."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec or "-" not in spec:
        return None
    first, _, last = (part.strip() for part in spec.partition("-"))
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0 or size == 0:
                raise _Unsatisfiable
            return max(0, size - suffix), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        raise _Unsatisfiable
    return start, min(end, size - 1)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # FakeHub.stop() closes connections and waits (bounded) for handlers itself

    def __init__(self, hub: FakeHub) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = hub

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not an error
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        try:
            super().shutdown_request(request)
        finally:
            self.hub._track(request, add=False)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    @property
    def hub(self) -> FakeHub:
        return cast(_Server, self.server).hub

    def setup(self) -> None:
        super().setup()
        self.hub._track(self.connection, add=True)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.hub._dispatch(self, head=True)

    def do_GET(self) -> None:
        self.hub._dispatch(self, head=False)


class FakeHub:
    """A hub look-alike on 127.0.0.1 for download tests. Use as a context manager (starts/stops daemon threads).

    ``url`` is the hub endpoint (pass it as ``endpoint=`` / ``HF_ENDPOINT``); ``cdn_url`` is where LFS
    ``/resolve`` requests are redirected to.  Token ``hf_valid`` (``Authorization: Bearer hf_valid``) has access
    to gated repos; any other token is a user who has not accepted the conditions.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._repos: dict[str, _Repo] = {}
        self._cdn: dict[str, _File] = {}
        self._blobs: dict[str, bytes] = {}
        self._cut: tuple[int, int] | None = None  # (nbytes, remaining responses)
        self._stall: _Stall | None = None
        self._bps: int | None = None
        self._conns: set[socket.socket] = set()
        self._idle = threading.Condition(self._lock)
        self._request_count = 0
        self._ranges: list[str] = []
        self.requests: list[RequestRecord] = []
        self.sent_bytes = 0
        """Body bytes written to clients so far."""
        self._servers = [_Server(self), _Server(self)]
        self._threads: list[threading.Thread] = []
        self.url = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        self.cdn_url = f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def __enter__(self) -> FakeHub:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Serve in background daemon threads."""
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fakehub",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, release stalled responses, close every connection and the listening sockets."""
        self._stopping.set()
        for server in self._servers:
            if self._threads:
                server.shutdown()
            server.server_close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            deadline = time.monotonic() + timeout
            while self._conns and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)
                self._idle.notify_all()
        if add and self._stopping.is_set():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # -- content -----------------------------------------------------------------------------------------------

    def add_file(
        self,
        repo_id: str,
        filename: str,
        data: bytes,
        *,
        lfs: bool = True,
        revision: str = "main",
        gated: bool = False,
        advertised_sha256: str | None = None,
    ) -> str:
        """Serve `data` at `repo_id`/`filename` on `revision`; return that revision's commit sha (deterministic).

        LFS files are answered with a 302 to ``{cdn_url}/cdn/{sha256}`` carrying ``X-Repo-Commit``,
        ``X-Linked-Etag`` and ``X-Linked-Size``; other files are served directly with a git-blob ``ETag``.
        Gating is per repo (once gated, always gated). `advertised_sha256` replaces the sha256 put in headers.
        """
        commit = hashlib.sha1(f"fakehub\0{repo_id}\0{revision}".encode()).hexdigest()
        sha256 = advertised_sha256 or hashlib.sha256(data).hexdigest()
        entry = _File(repo_id, filename, data, data, sha256, _git_blob_id(data), lfs)
        if lfs:
            entry.blob_id = _git_blob_id(entry.pointer)
        with self._lock:
            repo = self._repos.setdefault(repo_id, _Repo(repo_id))
            repo.gated = repo.gated or gated
            repo.revisions[revision] = commit
            repo.files.setdefault(commit, {})[filename] = entry
            if lfs:
                self._cdn[sha256] = entry
        return commit

    def add_blob(self, path: str, data: bytes) -> str:
        """Serve raw bytes at ``{url}/{path}`` (a plain file server, no hub headers); return the full URL."""
        path = path.lstrip("/")
        with self._lock:
            self._blobs[path] = data
        return f"{self.url}/{quote(path)}"

    def corrupt(self, repo_id: str, filename: str, revision: str = "main") -> None:
        """Serve same-length but different bytes for that file while still advertising the original sha256."""
        with self._lock:
            repo = self._repos[repo_id]
            entry = repo.files[repo.revisions.get(revision, revision)][filename]
            if not entry.data:
                raise ValueError("cannot corrupt an empty file")
            served = bytearray(entry.data)
            served[len(served) // 2] ^= 0xFF
            entry.served = bytes(served)

    def overlong(
        self, repo_id: str, filename: str, extra: int, *, chunked: bool = False, revision: str = "main"
    ) -> None:
        """The CDN sends `extra` zero bytes after that (LFS) file, more than the hub advertises; `chunked`: without
        a Content-Length, so only the advertised size tells the client when to stop."""
        with self._lock:
            repo = self._repos[repo_id]
            entry = repo.files[repo.revisions.get(revision, revision)][filename]
            entry.extra, entry.chunked = extra, chunked

    # -- fault injection ---------------------------------------------------------------------------------------

    def cut_after(self, nbytes: int, times: int = 1) -> None:
        """The next `times` body responses send at most `nbytes` body bytes, then close the connection."""
        with self._lock:
            self._cut = (nbytes, times) if times > 0 else None

    def stall_after(self, nbytes: int) -> threading.Event:
        """Body responses send `nbytes`, then hang until the returned Event is set (or the hub stops), then
        close the connection. Once the Event is set, later responses are served normally."""
        stall = _Stall(nbytes, threading.Event(), threading.Event())
        with self._lock:
            self._stall = stall
        return stall.release

    def wait_for_stall(self, timeout: float = 5.0) -> bool:
        """Wait until a response has reached the point set by the latest `stall_after`."""
        with self._lock:
            stall = self._stall
        return stall is not None and stall.reached.wait(timeout)

    def throttle(self, bytes_per_second: int | None) -> None:
        """Limit the speed of each body response (None: unlimited)."""
        with self._lock:
            self._bps = bytes_per_second

    def ranges(self) -> list[str]:
        """Range header values seen on body GETs, in order."""
        with self._lock:
            return list(self._ranges)

    # -- request handling --------------------------------------------------------------------------------------

    def _dispatch(self, req: _Handler, *, head: bool) -> None:
        split = urlsplit(req.path)
        with self._lock:
            self.requests.append(
                {
                    "method": req.command,
                    "path": req.path,
                    "headers": {k.lower(): v for k, v in req.headers.items()},
                }
            )
            self._request_count += 1
            request_id = f"fakehub-{self._request_count}"
        headers = {"X-Request-Id": request_id}
        path = split.path
        if path.startswith("/api/models/"):
            self._api(req, head, path[len("/api/models/") :], parse_qs(split.query), headers)
        elif "/resolve/" in path:
            self._resolve(req, head, path, headers)
        elif path.startswith("/cdn/"):
            with self._lock:
                entry = self._cdn.get(path[len("/cdn/") :])
            if entry is None:
                self._error(req, head, 404, None, "Not Found", headers)
                return
            name = entry.filename.rsplit("/", 1)[-1]
            headers["Content-Disposition"] = (
                f"inline; filename*=UTF-8''{quote(name)}; filename=\"{quote(name, safe=' ')}\";"
            )
            self._send_bytes(req, head, entry.served, f'"{entry.sha256}"', headers, entry.extra, entry.chunked)
        else:
            with self._lock:
                blob = self._blobs.get(unquote(path).lstrip("/"))
            if blob is None:
                self._error(req, head, 404, None, "Not Found", headers)
            else:
                self._send_bytes(req, head, blob, f'"{hashlib.sha256(blob).hexdigest()}"', headers)

    def _auth_error(self, req: _Handler, repo: _Repo) -> tuple[int, str] | None:
        if not repo.gated:
            return None
        auth = req.headers.get("Authorization") or ""
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        if not token:
            return 401, (
                f"Access to model {repo.repo_id} is restricted. You must have access to it and be authenticated"
                " to access it. Please log in."
            )
        if token != VALID_TOKEN:
            return 403, (
                f"Access to model {repo.repo_id} is restricted and you are not in the authorized list."
                f" Visit https://huggingface.co/{repo.repo_id} to ask for access."
            )
        return None

    def _lookup(
        self,
        req: _Handler,
        head: bool,
        repo_id: str,
        revision: str,
        headers: dict[str, str],
        *,
        check_auth: bool,
    ) -> tuple[_Repo, str] | None:
        """Find repo and commit, answering the hub's error if either is missing or gated."""
        with self._lock:
            repo = self._repos.get(repo_id)
        if repo is None:
            self._error(req, head, 401, "RepoNotFound", "Repository not found", headers)
            return None
        if check_auth and (auth_error := self._auth_error(req, repo)) is not None:
            self._error(req, head, auth_error[0], "GatedRepo", auth_error[1], headers)
            return None
        commit = repo.revisions.get(revision, revision)
        if commit not in repo.files:
            self._error(
                req,
                head,
                404,
                "RevisionNotFound",
                f"Invalid rev id: {revision}",
                headers,
            )
            return None
        return repo, commit

    def _resolve(self, req: _Handler, head: bool, path: str, headers: dict[str, str]) -> None:
        raw_repo, _, rest = path.lstrip("/").partition("/resolve/")
        raw_rev, _, raw_file = rest.partition("/")
        found = self._lookup(req, head, unquote(raw_repo), unquote(raw_rev), headers, check_auth=True)
        if found is None:
            return
        repo, commit = found
        headers["X-Repo-Commit"] = commit
        with self._lock:
            entry = repo.files[commit].get(unquote(raw_file))
        if entry is None:
            self._error(req, head, 404, "EntryNotFound", "Entry not found", headers)
            return
        if not entry.lfs:
            self._send_bytes(req, head, entry.served, f'"{entry.blob_id}"', headers)
            return
        location = f"{self.cdn_url}/cdn/{entry.sha256}"
        body = f"Found. Redirecting to {location}".encode()
        headers.update(
            {
                "Location": location,
                "ETag": f'"{entry.blob_id}"',
                "X-Linked-Etag": f'"{entry.sha256}"',
                "X-Linked-Size": str(len(entry.data)),
                "Content-Type": "text/plain; charset=utf-8",
            }
        )
        self._respond(req, head, 302, headers, body)

    def _api(self, req: _Handler, head: bool, rest: str, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        """``/api/models/{repo}[/revision/{rev}]`` (model_info) and ``/api/models/{repo}/tree/{rev}[/{path}]``."""
        match = _API_RE.match(rest)
        repo_id = unquote(match["repo"] if match else rest)
        kind = match["kind"] if match else "revision"
        raw_rev, _, raw_path = (match["rest"] if match else "").partition("/")
        with self._lock:
            repo = self._repos.get(repo_id)
            revision = unquote(raw_rev) or (
                "main" if repo is None or "main" in repo.revisions else next(iter(repo.revisions))
            )
        found = self._lookup(req, head, repo_id, revision, headers, check_auth=False)
        if found is None:
            return
        repo, commit = found
        with self._lock:
            files = sorted(repo.files[commit].values(), key=lambda f: f.filename)
        headers["Content-Type"] = "application/json; charset=utf-8"
        if kind == "tree":
            recursive = query.get("recursive", ["false"])[-1].lower() in ("1", "true")
            tree = _tree(files, unquote(raw_path).strip("/"), recursive)
            self._respond(req, head, 200, headers, json.dumps(tree).encode())
            return
        blobs = query.get("blobs", ["false"])[-1].lower() in ("1", "true")
        siblings: list[dict[str, object]] = []
        for entry in files:
            sibling: dict[str, object] = {"rfilename": entry.filename}
            if blobs:
                sibling.update({"blobId": entry.blob_id, "size": len(entry.data)})
                if entry.lfs:
                    sibling["lfs"] = {
                        "sha256": entry.sha256,
                        "size": len(entry.data),
                        "pointerSize": len(entry.pointer),
                    }
            siblings.append(sibling)
        info = {
            "_id": commit[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": commit,
            "lastModified": "2024-01-01T00:00:00.000Z",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "private": False,
            "disabled": False,
            "gated": "auto" if repo.gated else False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        self._respond(req, head, 200, headers, json.dumps(info).encode())

    # -- low-level responses -----------------------------------------------------------------------------------

    def _respond(
        self,
        req: _Handler,
        head: bool,
        status: int,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        req.send_response(status)
        for key, value in headers.items():
            req.send_header(key, value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if not head:
            req.wfile.write(body)

    def _error(
        self,
        req: _Handler,
        head: bool,
        status: int,
        code: str | None,
        message: str,
        headers: dict[str, str],
    ) -> None:
        if code is not None:
            headers["X-Error-Code"] = code
        headers["X-Error-Message"] = message
        headers["Content-Type"] = "application/json; charset=utf-8"
        self._respond(req, head, status, headers, json.dumps({"error": message}).encode())

    def _send_bytes(
        self,
        req: _Handler,
        head: bool,
        data: bytes,
        etag: str,
        headers: dict[str, str],
        extra: int = 0,
        chunked: bool = False,
    ) -> None:
        """Serve file bytes with Range support and the configured faults (`extra` zero bytes after the body,
        `chunked` transfer encoding)."""
        size = len(data)
        range_header = req.headers.get("Range")
        if range_header is not None and not head:
            with self._lock:
                self._ranges.append(range_header)
        headers.update(
            {
                "ETag": etag,
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
        )
        status, start, end = 200, 0, size - 1
        if range_header is not None:
            try:
                parsed = _parse_range(range_header, size)
            except _Unsatisfiable:
                headers["Content-Range"] = f"bytes */{size}"
                self._respond(req, head, 416, headers, b"")
                return
            if parsed is not None:
                status, (start, end) = 206, parsed
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        body = data[start : end + 1]
        req.send_response(status)
        for key, value in headers.items():
            req.send_header(key, value)
        if chunked:
            req.send_header("Transfer-Encoding", "chunked")
        else:
            req.send_header("Content-Length", str(len(body) + extra))
        req.end_headers()
        if head:
            return
        if extra or chunked:
            self._write_padded(req, body, extra, chunked)
            return

        with self._lock:
            limit: int | None = None
            stall: _Stall | None = None
            if self._cut is not None:
                limit, remaining = self._cut
                self._cut = (limit, remaining - 1) if remaining > 1 else None
            elif self._stall is not None and not self._stall.release.is_set():
                stall = self._stall
                limit = stall.nbytes
            bps = self._bps
        try:
            self._write(req, body if limit is None else body[:limit], bps)
            if stall is not None:
                stall.reached.set()
                while not stall.release.wait(0.05) and not self._stopping.is_set():
                    pass
        except OSError:  # the client went away
            req.close_connection = True
        if (limit is not None and limit < len(body)) or self._stopping.is_set():
            # Drop the connection: the client gets fewer bytes than Content-Length.
            req.close_connection = True

    def _write(self, req: _Handler, body: bytes, bps: int | None) -> None:
        chunk = _CHUNK if bps is None else max(1, min(_CHUNK, bps // 20))
        for offset in range(0, len(body), chunk):
            if self._stopping.is_set():
                return
            piece = body[offset : offset + chunk]
            req.wfile.write(piece)
            self._count(len(piece))
            if bps is not None:
                self._stopping.wait(len(piece) / bps)

    def _count(self, n: int) -> None:
        with self._lock:
            self.sent_bytes += n

    def _write_padded(self, req: _Handler, body: bytes, extra: int, chunked: bool) -> None:
        """The body, then `extra` zero bytes, optionally framed as chunks; until the client hangs up."""
        zeros = memoryview(bytes(_CHUNK))
        body_view = memoryview(body)
        pieces = itertools.chain(
            (body_view[i : i + _CHUNK] for i in range(0, len(body), _CHUNK)),
            (zeros[: min(_CHUNK, extra - i)] for i in range(0, extra, _CHUNK)),
        )
        try:
            for piece in pieces:
                if self._stopping.is_set():
                    break
                if chunked:
                    req.wfile.write(b"%x\r\n" % len(piece))
                req.wfile.write(piece)
                if chunked:
                    req.wfile.write(b"\r\n")
                self._count(len(piece))
            else:
                if chunked:
                    req.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        req.close_connection = True
