"""Where the server listens: parsing `tcp://HOST:PORT` and `HOST:PORT`, loopback checks, free ports."""

from __future__ import annotations

import errno
import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass

from ..errors import EdgeError, UsageError


@dataclass(frozen=True)
class Address:
    """A TCP address to listen on."""

    host: str
    """Name or IP literal (without brackets)."""
    port: int

    @property
    def loopback(self) -> bool:
        """Only this machine can connect (127.0.0.0/8, ::1, localhost)."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, scheme: str | None = None, default_host: str = "127.0.0.1") -> Address:
    """`HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (host 127.0.0.1), with `scheme://` in front when given."""
    raw = text.strip()
    if scheme is not None:
        prefix = f"{scheme}://"
        if "://" in raw and not raw.startswith(prefix):
            raise UsageError(f"{text!r}: use {prefix}HOST:PORT")
        raw = raw.removeprefix(prefix)
    if raw.isdigit():
        raw = f":{raw}"
    parts = urllib.parse.urlsplit(f"//{raw}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None or parts.path or parts.query or parts.username:
        raise UsageError(f"{text!r} is not an address to listen on; use {scheme + '://' if scheme else ''}HOST:PORT")
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is out of range")
    return Address(parts.hostname or default_host, port)


def bind(address: Address) -> socket.socket:
    """A listening TCP socket on the address (a clear one-line error when it is taken or not this machine's)."""
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    family, kind, proto, _, where = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise EdgeError(f"cannot listen on {address}: {reason}") from None
    sock.setblocking(False)
    return sock


def port_free(address: Address) -> bool:
    """True when nothing listens on the address here (checked by binding it for a moment; nothing is sent)."""
    try:
        bind(address).close()
    except EdgeError:
        return False
    return True
