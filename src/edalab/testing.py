"""Fixtures for testing your own event handlers against a real nats-server.

In your ``conftest.py``::

    from edalab.testing import nats_server, nats_url, nc, js  # noqa: F401

and in a test::

    async def test_handler(js):
        factory = EventFactory()
        await ensure_stream(js, "USERS", ["user.>"])
        await publish_event(js, factory("user.created", {"user_id": "u1"}))

``nats_server`` is session-scoped: one real server with JetStream on a free port
and its own temporary store for the whole test session. ``nc`` and ``js`` are
per test. :class:`EventFactory` makes events with predictable ids and times.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext

from edalab.connection import connect
from edalab.events import Event
from edalab.server import NatsServer

__all__ = ["EventFactory", "FixedClock", "js", "nats_server", "nats_url", "nc"]


class FixedClock:
    """A clock that starts at ``start`` and moves ``step`` forward on every call.

    >>> clock = FixedClock()
    >>> clock().isoformat(), clock().isoformat()
    ('2024-01-01T00:00:00+00:00', '2024-01-01T00:00:01+00:00')
    """

    def __init__(
        self,
        start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
        step: timedelta = timedelta(seconds=1),
    ) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        now = self.now
        self.now += self.step
        return now


class EventFactory:
    """Make events with ids ``evt-0001``, ``evt-0002`` ... and a :class:`FixedClock`.

    >>> make = EventFactory()
    >>> event = make("user.created", {"user_id": "u1"})
    >>> event.id, event.timestamp.isoformat()
    ('evt-0001', '2024-01-01T00:00:00+00:00')
    """

    def __init__(self, prefix: str = "evt-", clock: FixedClock | None = None) -> None:
        self.prefix = prefix
        self.clock = clock or FixedClock()
        self.count = 0

    def __call__(self, type: str, data: Any = None, **fields: Any) -> Event:
        self.count += 1
        fields.setdefault("id", f"{self.prefix}{self.count:04d}")
        return Event.create(type, data, clock=self.clock, **fields)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A real nats-server with JetStream for the whole session (free port, own store)."""
    store: Path = tmp_path_factory.mktemp("nats-store")
    with NatsServer(store_dir=store, name="edalab-test") as srv:
        yield srv


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    """The session server's ``nats://`` URL."""
    return nats_server.url


@pytest_asyncio.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    """A client connected to the session server, closed after the test."""
    client = await connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


@pytest_asyncio.fixture
async def js(nc: NATS) -> JetStreamContext:
    """A JetStream context on :func:`nc`."""
    return nc.jetstream()
