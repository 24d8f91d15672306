"""Is anything listening where a URL points? Asked before a client that would retry for minutes, silently."""

from __future__ import annotations

import os
import socket
import urllib.request
from urllib.parse import urlsplit

# gRPC (Spark Connect) reads these besides the usual ones that requests and urllib read
_GRPC_PROXIES = ("grpc_proxy", "GRPC_PROXY")
DEFAULT_PORTS = {"http": 80, "https": 443, "sc": 15002}  # sc: Spark Connect


def address(url: str) -> tuple[str, int]:
    """The host and port a URL points at (a bare host is https; no port: the scheme's own). Nothing else of
    the URL is kept: the rest (an ``sc://`` URL's ``;token=``) may be a secret."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return parts.hostname or "localhost", parts.port or DEFAULT_PORTS.get(parts.scheme, 443)


def unreachable(host: str, port: int, timeout: float = 10.0) -> str | None:
    """Why nothing answers at host:port (refused, unknown name, timed out), or None when something does.

    None too when a proxy stands between (HTTPS_PROXY and friends, unless NO_PROXY exempts the host): the
    client goes through it, so a direct connection says nothing about whether the client will get there.
    """
    if any(os.environ.get(v) for v in _GRPC_PROXIES) or (
        urllib.request.getproxies() and not urllib.request.proxy_bypass(host)
    ):
        return None
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return None
