"""NATS URLs: split, check and probe them, before a client tries for minutes.

A NATS URL is ``nats://[user:password@]host:port`` (or ``tls://``, ``ws://``,
``wss://``; ``host:port`` alone means ``nats://``), several of them comma separated
for a cluster. :func:`server_urls` checks each and raises
:class:`~edalab.InvalidURLError` naming what is wrong (never echoing a
password); :func:`probe` asks whether a NATS server answers there. Used by
:func:`edalab.connect` and the ``edalab`` command (notebook ``00_start_here``).

    >>> server_urls("localhost:4222, nats://127.0.0.1:4223")
    ['nats://localhost:4222', 'nats://127.0.0.1:4223']
    >>> url_user("nats://ann:s3cret@localhost:4222")
    'ann'
"""

from __future__ import annotations

import socket
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from ._confidential import mask_url
from ._errors import InvalidURLError

__all__ = ["SCHEMES", "probe", "server_address", "server_urls", "url_user", "without_credentials"]

#: The schemes nats-py connects with.
SCHEMES = ("nats", "tls", "ws", "wss")


def _split(url: str) -> SplitResult:
    shown = mask_url(url.strip())  # as given, password masked
    full = url.strip() if "://" in url else f"nats://{url.strip()}"
    try:
        parts = urlsplit(full)
        port = parts.port
    except ValueError:  # a port that is not a number or out of range, or a broken IPv6 host
        hostport = full.split("://", 1)[1].rsplit("@", 1)[-1]
        if "[" in hostport and "]" not in hostport:
            raise InvalidURLError(shown, "unclosed '[' in an IPv6 host") from None
        raw = hostport.rpartition(":")[2]
        raise InvalidURLError(shown, f"port {raw!r} is not a number from 1 to 65535") from None
    if parts.scheme not in SCHEMES:
        raise InvalidURLError(shown, f"scheme {parts.scheme!r} is not one of {', '.join(SCHEMES)}")
    if not parts.hostname:
        raise InvalidURLError(shown, "no host")
    if port == 0:
        raise InvalidURLError(shown, "port 0 is not a port a server listens on")
    if parts.query or parts.fragment or (parts.scheme in ("nats", "tls") and parts.path.strip("/")):
        raise InvalidURLError(shown, "a NATS URL has no path, query or fragment")
    return parts


def server_urls(url: str) -> list[str]:
    """Each URL of a comma-separated list, checked, with ``nats://`` added where missing.

    Raises :class:`~edalab.InvalidURLError` for the first bad one.

        >>> server_urls("localhost:notaport")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        edalab.InvalidURLError: ...: port 'notaport' is not a number from 1 to 65535
    """
    servers = [u.strip() for u in url.split(",") if u.strip()]
    if not servers:
        raise InvalidURLError(url, "no URL given")
    out = []
    for server in servers:
        _split(server)
        out.append(server if "://" in server else f"nats://{server}")
    return out


def server_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of one NATS URL; the port defaults to 4222.

    >>> server_address("nats://127.0.0.1")
    ('127.0.0.1', 4222)
    """
    parts = _split(url)
    return parts.hostname or "127.0.0.1", parts.port or 4222


def url_user(url: str) -> str | None:
    """The user a URL logs in as (``None`` for none, ``"token user"`` for a bare token)."""
    parts = _split(url.split(",")[0])
    if parts.username is None:
        return None
    if parts.password is None:
        return "token user"
    return unquote(parts.username)


def without_credentials(url: str) -> str:
    """The URL (or comma-separated URLs), checked, with any user, password or token removed.

    For a URL handed on to others who log in with credentials of their own.

        >>> without_credentials("nats://admin:s3cret@host:4222, host2:4223")
        'nats://host:4222,nats://host2:4223'
    """
    out = []
    for server in server_urls(url):
        parts = _split(server)
        host = parts.netloc.rpartition("@")[2]
        out.append(urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)))
    return ",".join(out)


def probe(url: str, timeout: float = 1.0) -> str | None:
    """Return ``None`` if a NATS server answers at ``url``, else why not.

    Opens a TCP connection and reads the server's ``INFO`` greeting. A malformed URL
    raises :class:`~edalab.InvalidURLError`.

        >>> probe("nats://127.0.0.1:1", timeout=0.5) is not None
        True
    """
    host, port = server_address(url)
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            greeting = s.recv(4)
    except OSError as err:
        return f"{type(err).__name__}: {err.strerror or err}"
    if greeting != b"INFO":
        return f"something answered at {host}:{port}, but it is not a NATS server"
    return None
