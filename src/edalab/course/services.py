"""Services that run until stopped: consumers serving their handlers under one TaskGroup.

The capstone shop (notebook ``17_capstone``) and the sagas (notebook ``16_patterns``)
start their services in one cell and stop them in another, so the
``asyncio.TaskGroup`` lives in a task of its own::

    services = Services()
    await services.start()
    services.add("payments", payments_consumer, charge, unexpected="retry")
    ...
    services.check()          # raises at once if a service crashed
    await services.stop()     # every service stops; a crash is raised here too

Each service is :meth:`edalab.EventConsumer.serve`; one that crashes cancels the others
(the TaskGroup's rule) and the crash surfaces at the next :meth:`Services.check` (every
``settle()`` calls it while it waits), not at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import nats.errors

from edalab import EventConsumer

__all__ = ["Services"]

#: Errors a service outlives: the connection hiccuped; it pulls again.
HICCUPS = (nats.errors.Error, TimeoutError)


class Services:
    """A group of :meth:`~edalab.EventConsumer.serve` tasks under one ``asyncio.TaskGroup``."""

    def __init__(self, on_hiccup: Callable[[str, BaseException], None] | None = None) -> None:
        self._on_hiccup = on_hiccup or (lambda name, err: None)
        self._group: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.consumers: list[EventConsumer] = []

    async def start(self) -> None:
        """Open the group (in a task of its own, so it outlives the calling cell)."""
        if self._supervisor is not None:
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stopped = asyncio.Event()
        self._supervisor = asyncio.create_task(self._supervise(ready), name="edalab services")
        await ready

    async def _supervise(self, ready: asyncio.Future[None]) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            ready.set_result(None)
            await self._stopped.wait()  # a crash cancels this wait: the group goes down
            for consumer in self.consumers:
                consumer.stop()
        self._group = None

    def add(self, name: str, consumer: EventConsumer, handler: Any, **serve: Any) -> None:
        """Serve ``consumer`` with ``handler`` in the group (``serve`` options as given)."""
        self.check()
        if self._group is None:
            raise RuntimeError("start() the services first")
        self.consumers.append(consumer)
        self._group.create_task(self._serve(name, consumer, handler, serve), name=name)

    async def _serve(
        self, name: str, consumer: EventConsumer, handler: Any, serve: dict[str, Any]
    ) -> None:
        while not self._stopped.is_set():
            try:
                await consumer.serve(handler, **serve)
            except HICCUPS as err:  # a service must outlive a connection hiccup
                self._on_hiccup(name, err)

    def check(self) -> None:
        """Raise the crash (an ``ExceptionGroup``) if a service crashed; else nothing."""
        if self._supervisor is not None and self._supervisor.done():
            self._supervisor.result()

    async def wait(self) -> None:
        """Run until the services are stopped (or one crashes: then raise its error)."""
        if self._supervisor is not None:
            await asyncio.shield(self._supervisor)

    async def stop(self) -> None:
        """Stop every service (each finishes the event in hand); raise a crash, if any."""
        self._stopped.set()
        supervisor, self._supervisor = self._supervisor, None
        try:
            if supervisor is not None:
                await supervisor
        finally:
            for consumer in self.consumers:
                await consumer.close()
            self.consumers.clear()
