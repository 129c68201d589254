"""A JetStream context that keeps its connection, so edalab needs no private attribute.

nats-py's ``JetStreamContext`` holds its connection only privately, yet edalab's bulk
paths (:func:`~edalab._publishing.publish_events`, :class:`~edalab._consuming.EventConsumer`)
publish on the connection itself: replies to one wildcard inbox instead of a future per
message, pull requests of their own. :class:`JetStream` is a ``JetStreamContext`` that
also exposes its ``connection`` and its ``api_prefix``; :func:`edalab.connect` returns a
:class:`Connection`, whose ``jetstream()`` builds one, so notebook code is unchanged::

    nc = await connect()                 # an edalab Connection
    js = nc.jetstream()                  # a JetStream: js.connection is nc
    js = jetstream(other_nc)             # the same for a connection made by nats.connect

Notebook ``15_performance`` shows what the bulk paths do with the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DEFAULT_PREFIX
from nats.js.client import JetStreamContext

from edalab._errors import EdalabError

__all__ = ["Connection", "Inbox", "JetStream", "NotAnEdalabJetStream", "connection_of", "jetstream"]


class NotAnEdalabJetStream(EdalabError, TypeError):
    """A bulk path got a plain nats-py ``JetStreamContext``: it needs the connection too."""


class JetStream(JetStreamContext):
    """A ``JetStreamContext`` that keeps its ``connection`` and ``api_prefix`` public."""

    def __init__(self, conn: NATS, **opts: Any) -> None:
        # Every option goes to nats-py unchanged (prefix, domain, timeout,
        # publish_async_max_pending ...), so this follows nats-py's own signature.
        super().__init__(conn, **opts)
        #: The NATS connection this context publishes on.
        self.connection = conn
        domain = opts.get("domain")
        #: The JetStream API subject prefix (``$JS.API``, or ``$JS.<domain>.API``).
        self.api_prefix: str = (
            opts.get("prefix", DEFAULT_PREFIX) if domain is None else f"$JS.{domain}.API"
        )


class Connection(NATS):
    """A nats-py client whose ``jetstream()`` returns a :class:`JetStream`."""

    def jetstream(self, **opts: Any) -> JetStream:
        """A :class:`JetStream` on this connection (same options as nats-py's)."""
        return JetStream(self, **opts)


def jetstream(nc: NATS, **opts: Any) -> JetStream:
    """A :class:`JetStream` on any nats-py connection (``prefix``, ``domain``, ``timeout`` ...)."""
    return JetStream(nc, **opts)


def connection_of(js: JetStreamContext) -> NATS:
    """The connection of ``js``; a typed error when ``js`` did not come from edalab.

    >>> connection_of(object())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    edalab._context.NotAnEdalabJetStream: this needs an edalab JetStream ...
    """
    if isinstance(js, JetStream):
        return js.connection
    raise NotAnEdalabJetStream(
        "this needs an edalab JetStream (it publishes on the connection itself): connect "
        "with edalab.connect() and use nc.jetstream(), or wrap a nats-py connection with "
        "edalab.jetstream(nc)"
    )


class Inbox:
    """Replies to one subscription, gathered by its callback (public nats-py API, no task each).

    nats-py's ``sub.messages`` makes a task per message and ``sub.next_msg`` a timer per
    call; a callback that appends to a deque costs neither. :meth:`wait` sleeps only
    when the deque is empty, under one deadline.

        inbox = await Inbox().open(nc, nc.new_inbox() + ".*")
        await nc.publish("order.placed", b"{}", reply=...)
        await inbox.wait(2.0) and inbox.msgs.popleft()
    """

    def __init__(self) -> None:
        #: Messages received and not yet taken, oldest first.
        self.msgs: deque[Msg] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._sub: Subscription | None = None

    async def open(self, nc: NATS, subject: str) -> Inbox:
        """Subscribe to ``subject`` (usually an inbox wildcard) and gather what comes."""
        self._sub = await nc.subscribe(subject, cb=self._gather)
        return self

    async def _gather(self, msg: Msg) -> None:
        self.msgs.append(msg)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a message; ``True`` when one is there."""
        if self.msgs:
            return True
        self._wake = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await self._wake
        except TimeoutError:
            pass
        finally:
            self._wake = None
        return bool(self.msgs)

    async def close(self) -> None:
        """Unsubscribe (what was gathered stays in :attr:`msgs`)."""
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
            self._sub = None
