"""Connect to NATS so that failures are fast and say what went wrong.

nats-py on its own retries an unreachable server for about two minutes, retries
bad credentials the same way, and reports a denied publish or subscribe only
through ``error_cb`` (a publish that needs a reply then just times out).
:func:`connect` fixes the first two, and keeps a log of each connection's errors
so that :func:`publish_checked`, :func:`subscribe_checked` and
:func:`~edalab.publish_event` can raise
:class:`~edalab.PermissionDenied` naming the user and the subject
(notebooks ``00_start_here`` and ``12_security``)::

    nc = await connect()                                   # ensure_server() + fail fast
    nc = await connect(url, user="ann", password="secret")
    await publish_checked(nc, "order.placed", b"{}")       # raises if ann may not

No error raised here shows a password, token or nkey seed, also when it was given in
the URL (``nats://ann:secret@host:4222`` is shown as ``nats://ann:***@host:4222``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from collections import UserString
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

from ._confidential import redact
from ._discovery import ServerHandle, ensure_server, env_credentials
from ._errors import AuthenticationError, PermissionDenied, ServerUnreachableError
from ._nats import Connection, UserCredentials
from ._urls import probe, server_urls, url_user

__all__ = [
    "ConnectionLog",
    "connect",
    "connection_log",
    "env_credentials",
    "permission_error",
    "publish_checked",
    "subscribe_checked",
]

_VIOLATION = re.compile(r'permissions violation for (publish|subscription) to "?([^"\s]+)"?', re.I)


@dataclass
class ConnectionLog:
    """Who a connection is, and the asynchronous errors the server sent it."""

    identity: str
    errors: list[BaseException] = field(default_factory=list)

    def denials(self, since: int = 0) -> list[tuple[str, str]]:
        """``(operation, subject)`` of each permission violation since error number ``since``."""
        out = []
        for err in self.errors[since:]:
            found = _VIOLATION.search(str(err))
            if found:
                op = "publish" if found.group(1).lower() == "publish" else "subscribe"
                out.append((op, found.group(2)))
        return out


_logs: weakref.WeakKeyDictionary[NATS, ConnectionLog] = weakref.WeakKeyDictionary()


def connection_log(nc: NATS) -> ConnectionLog | None:
    """The log of a connection made by :func:`connect` (``None`` for other connections)."""
    return _logs.get(nc)


def _identity(options: dict[str, Any], url: str) -> str:
    """Who the connection logs in as: its user, nkey or token option, else the URL's user."""
    if options.get("user"):
        return str(options["user"])
    seed = options.get("nkeys_seed_str")
    if seed:
        try:
            import nkeys

            public: bytes = nkeys.from_seed(seed.encode()).public_key
            key = "nkey " + public.decode()
        except Exception:  # an invalid seed: the server will refuse it; name it vaguely
            key = "nkey user"
        return f"{options['name']} ({key})" if options.get("name") else key
    if options.get("token"):
        return "token user"
    creds = options.get("user_credentials")
    if creds:
        if isinstance(creds, UserCredentials):  # a JWT user of edalab.Account.user
            return f"JWT user {creds.user!r}"
        # Raw credentials text holds the seed: name a file, never the text.
        return (
            "the user of the credentials given"
            if isinstance(creds, UserString)
            else (f"the user in {creds}")
        )
    return url_user(url) or "anonymous"


def _secrets(options: dict[str, Any], servers: list[str]) -> list[str]:
    """The secrets this connection carries, to mask wherever nats-py might echo them."""
    found = [options.get(k) for k in ("password", "token", "nkeys_seed_str")]
    for server in servers:
        parts = urlsplit(server)
        found.append(parts.password if parts.password is not None else parts.username)
    return [s for s in found if isinstance(s, str) and s]


def _is_auth_failure(err: BaseException) -> bool:
    return isinstance(err, nats.errors.AuthorizationError) or (
        "authorization violation" in str(err).lower()
    )


async def connect(
    url: str | ServerHandle | None = None,
    *,
    timeout: float = 5.0,
    name: str | None = None,
    **options: Any,
) -> Connection:
    """Connect to NATS, failing within ``timeout`` seconds with the URL in the error.

    Raises :class:`~edalab.InvalidURLError` for a URL no client could use,
    :class:`~edalab.ServerUnreachableError` when nothing (or no NATS
    server) answers, and :class:`~edalab.AuthenticationError` at once when
    the server refuses the credentials, naming the user it tried (from the options or
    the URL). Without ``url`` it uses :func:`~edalab.ensure_server`, and
    credentials from the environment (:func:`env_credentials`). Other options go to
    ``nats.connect`` (``user``/``password``, ``nkeys_seed_str``, ``error_cb`` ...).

        nc = await connect()          # in a notebook cell
    """
    if url is None:
        url = ensure_server()
    if isinstance(url, ServerHandle):  # the environment chose the server: its credentials too
        for key, value in url.options.items():
            options.setdefault(key, value)
    target = url.url if isinstance(url, ServerHandle) else url
    servers = server_urls(target)
    first = servers[0]
    # One answering server is enough (a cluster with a node down still takes clients).
    why = None
    for server in servers:
        why = await asyncio.to_thread(probe, server, min(timeout, 2.0))
        if why is None:
            break
    if why is not None:
        raise ServerUnreachableError(target, why)

    if name is not None:
        options["name"] = name
    log = ConnectionLog(_identity(options, first))
    refused = asyncio.Event()
    user_cb = options.pop("error_cb", None)

    async def record(err: Exception) -> None:
        log.errors.append(err)
        if _is_auth_failure(err):
            refused.set()
        if user_cb is not None:
            await user_cb(err)

    options["error_cb"] = record
    options.setdefault("connect_timeout", max(1, int(min(timeout, 5))))
    options.setdefault("reconnect_time_wait", 0.5)
    nc = Connection()  # its jetstream() keeps the connection: see _nats
    attempt = asyncio.ensure_future(nc.connect(servers, **options))
    refusal = asyncio.ensure_future(refused.wait())
    try:
        done, _ = await asyncio.wait(
            {attempt, refusal}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    except BaseException:
        # Cancelled (or interrupted) while connecting: end the attempt, then propagate.
        await _abandon(attempt, nc)
        raise
    finally:
        refusal.cancel()
    if attempt in done and attempt.exception() is None:
        _logs[nc] = log
        return nc
    await _abandon(attempt, nc)
    if refused.is_set():
        raise AuthenticationError(first, log.identity)
    err = attempt.exception() if attempt.done() and not attempt.cancelled() else None
    # The server's own words (a -ERR, which nats-py raises as a plain nats.errors.Error)
    # beat the socket error that may follow when the server closes right after them.
    said = [e for e in log.errors if type(e) is nats.errors.Error]
    last = said[-1] if said else log.errors[-1] if log.errors else None
    reason = last or err or TimeoutError(f"no connection in {timeout:g}s")
    why = redact(f"{type(reason).__name__}: {reason}".rstrip(": "), _secrets(options, servers))
    raise ServerUnreachableError(first, why)


async def _abandon(attempt: asyncio.Future[None], nc: NATS) -> None:
    """Cancel a connection attempt and close its half-open socket.

    The attempt's own outcome (its error, its cancellation) stays inside: ``asyncio.wait``
    does not raise it. A cancellation of the *caller* while this waits does propagate.
    """
    attempt.cancel()
    await asyncio.wait({attempt})
    with contextlib.suppress(Exception):
        await nc.close()  # the half-open socket of a refused, timed-out or cancelled attempt


def permission_error(
    nc: NATS, subject: str, operation: str, since: int = 0
) -> PermissionDenied | None:
    """The PermissionDenied for ``subject`` if the server reported one after error ``since``."""
    log = connection_log(nc)
    if log is None:
        return None
    for op, denied in log.denials(since):
        if op == operation and denied.lower() == subject.lower():
            return PermissionDenied(log.identity, subject, operation)
    return None


async def _round_trips(nc: NATS, timeout: float) -> None:
    # The server sends its -ERR before the PONG that answers our PING, but nats-py hands
    # the error to error_cb in a task of its own; a second round trip lets that task run.
    for _ in range(2):
        await nc.flush(timeout=int(max(1, timeout)))


async def publish_checked(
    nc: NATS, subject: str, payload: bytes = b"", *, timeout: float = 2.0, **kwargs: Any
) -> None:
    """Publish, then make sure the server accepted it (raise PermissionDenied if not).

    Round trips (``flush``) after the publish let the server's error arrive first.
    """
    log = connection_log(nc)
    since = len(log.errors) if log else 0
    await nc.publish(subject, payload, **kwargs)
    await _round_trips(nc, timeout)
    denied = permission_error(nc, subject, "publish", since)
    if denied is not None:
        raise denied


async def subscribe_checked(
    nc: NATS, subject: str, *, timeout: float = 2.0, **kwargs: Any
) -> Subscription:
    """Subscribe, then make sure the server allowed it (raise PermissionDenied if not)."""
    log = connection_log(nc)
    since = len(log.errors) if log else 0
    sub = await nc.subscribe(subject, **kwargs)
    await _round_trips(nc, timeout)
    denied = permission_error(nc, subject, "subscribe", since)
    if denied is not None:
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()
        raise denied
    return sub
