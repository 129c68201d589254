"""A pytest plugin: fixtures for testing your own event handlers against a real nats-server.

Installing edalab registers this module as a pytest plugin (entry point ``pytest11``,
name ``edalab``), so a service's tests get the fixtures without importing anything::

    from edalab import EventFactory, ensure_stream, publish_event

    async def test_handler(js):
        make = EventFactory()
        await ensure_stream(js, "USERS", ["user.>"])
        await publish_event(js, make("user.created", {"user_id": "u1"}))

``nats_server`` is session-scoped: one real server with JetStream on a free port
and its own temporary store for the whole test session. ``nc`` and ``js`` are
per test and need pytest-asyncio (``pip install 'edalab[test]'``); without it the
plugin still loads, and ``nc``/``js`` fail with that advice when a test asks for them.
(Without the entry point, add ``pytest_plugins = ["edalab.testing"]`` to your
``conftest.py``.) This is the only module of edalab that imports pytest; the event
factory and the fixed clock are exported by ``edalab``. :func:`free_port` names a free
TCP port, for a test that must give one in advance (a server's URL in a config file).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import pytest

import edalab

from ._server import free_port

__all__ = ["free_port", "js", "nats_server", "nats_url", "nc"]


_F = TypeVar("_F", bound=Callable[..., Any])


class _FixtureDecorator(Protocol):
    def __call__(self, func: _F, /) -> _F: ...


def _needs_pytest_asyncio(func: _F) -> _F:
    """A fixture that, when a test asks for it, says pytest-asyncio is missing."""

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise pytest.UsageError(
            f"edalab's {func.__name__!r} fixture needs pytest-asyncio: "
            "pip install 'edalab[test]' (or pytest-asyncio)"
        )

    # Same name and requested fixtures, but plain (not async, no __wrapped__ to unwrap).
    missing.__name__ = missing.__qualname__ = func.__name__
    missing.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    return cast(_F, pytest.fixture(missing))


_async_fixture: _FixtureDecorator
try:
    from pytest_asyncio import fixture as _asyncio_fixture

    _async_fixture = cast(_FixtureDecorator, _asyncio_fixture)
except ImportError:  # a service's test env without it must still load this plugin
    _async_fixture = _needs_pytest_asyncio


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[edalab.NatsServer]:
    """A real nats-server with JetStream for the whole session (free port, own store)."""
    store: Path = tmp_path_factory.mktemp("nats-store")
    with edalab.NatsServer(store_dir=store, name="edalab-test") as srv:
        yield srv


@pytest.fixture(scope="session")
def nats_url(nats_server: edalab.NatsServer) -> str:
    """The session server's ``nats://`` URL."""
    return nats_server.url


@_async_fixture
async def nc(nats_url: str) -> AsyncIterator[edalab.Connection]:
    """A client connected to the session server, closed after the test."""
    client = await edalab.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


@_async_fixture
async def js(nc: edalab.Connection) -> edalab.JetStream:
    """A JetStream context on :func:`nc` (an edalab ``JetStream``: it keeps the connection)."""
    return nc.jetstream()
